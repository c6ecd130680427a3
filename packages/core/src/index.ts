export * from './record.js';
export * from './errors.js';
export * from './message-type.js';
export * from './source.js';
export * from './sink.js';
export * from './serde.js';
export * from './buffer.js';
export * from './logger.js';
export * from './datastream.js';
export * from './stage.js';
export * from './component.js';
export * from './key-manager.js';
export * from './pipeline-component.js';
export { z } from 'zod';
export { StateRestoreError } from './compile-transform.js';
export { outputTag, DataflowGraphError } from './stream-graph.js';
export {
  formatOutputRef,
  NamedOutputError,
  namedOutputTopic,
  parentRefsOf,
  parseOutputRef,
  type OutputRef,
} from './named-outputs.js';
export type {
  IntervalJoin,
  IntervalJoined,
  ProcessJoinContext,
  ProcessJoinFunction,
} from './interval-join.js';
export type {
  CoProcessContext,
  CoProcessFunction,
  ConnectedStreams,
  JoinedStreams,
  KeyedCoProcessContext,
  KeyedCoProcessFunction,
  KeyedConnectedStreams,
  WindowJoin,
} from './connected-streams.js';
export type {
  BroadcastConnectedStream,
  BroadcastContext,
  BroadcastProcessFunction,
  BroadcastState,
  BroadcastStream,
  KeyedBroadcastConnectedStream,
  KeyedBroadcastProcessFunction,
  ReadOnlyBroadcastAccess,
  ReadOnlyBroadcastState,
} from './broadcast-state.js';
export { KeyTypeError, RecordKeyError, UserFunctionError } from './operators.js';
export { StateDeclarationError } from './keyed-state.js';
export { InvalidTimestampError } from './watermark-assigner.js';
export { badSourceRecord, sourceRecordError, BadSourceRecordError } from './source-record-error.js';
export { sequenceInput, SequenceNumber, SequenceSource } from './sequence-input.js';
export {
  ndjsonFileInput,
  NdjsonFileSource,
  NdjsonFileError,
  DeferredNdjsonLine,
} from './ndjson-file-input.js';
export type { DeferParse } from './ndjson-file-input.js';
export {
  ndjsonFileOutput,
  NdjsonFileSink,
  NdjsonWriteError,
  splitFilePath,
} from './ndjson-file-output.js';
export { printerOutput, PrinterSink } from './printer-output.js';
export * from './pipeline-errors.js';
export * from './graph-validator.js';
export * from './pipeline-builder.js';
export * from './pipeline.js';
export { RunOptionsError, UnknownWorkerStageError } from './run-errors.js';
export { SplitWorkerError } from './split-run.js';
export type { SerializedError } from './split-ports.js';
export { StageFailedError } from './retry-policy.js';
export * from './reserved-headers.js';
export * from './memory-buffer.js';
export * from './serde-registry.js';
export * from './dead-letter.js';
export * from './checkpoint-store.js';
export * from './state-store.js';
export {
  DiskStateBackend,
  type DiskStateBackendOptions,
  StateBackendError,
  type StateBackendChoice,
} from './disk-keyed-map.js';
export {
  memoryStateBackend,
  type KeyedMap,
  type KeyedMapCodec,
  type OperatorStateBackend,
  type StateBackend,
} from './keyed-map.js';
export * from './metrics.js';
export * from './metrics-server.js';
export * from './console-logger.js';
export { PIPELINE_V8_FLAGS } from './pipeline-v8-flags.js';
