export const PACKAGE_NAME = '@codefeedr/testkit';
export {
  bufferConformanceSuite,
  type BufferConformanceOptions,
  type BufferWorkerSpec,
} from './buffer-conformance.js';
export {
  testRecords,
  testValues,
  decodeTestRecord,
  sendInBatches,
  type TestRecordValue,
} from './test-records.js';
export { waitFor, WaitTimeoutError, type WaitForOptions } from './wait-for.js';
export {
  WorkerProcess,
  testkitWorkerDir,
  typescriptNodeOptions,
  type WorkerEvent,
  type WorkerProcessOptions,
} from './worker-process.js';
export {
  transformHarness,
  TransformHarness,
  type HarnessDeadLetter,
  type HarnessInputRecord,
  type SendOptions,
  type TransformHarnessOptions,
} from './transform-harness.js';
export {
  sinkConformanceSuite,
  type SinkConformanceOptions,
  type SinkTarget,
} from './sink-conformance.js';
export {
  sourceConformanceSuite,
  type SourceConformanceOptions,
  type SourceTarget,
} from './source-conformance.js';
export type { ComponentModule } from './component-module.js';
export { ComponentModuleError, HarnessUnsupportedError, TransformHarnessError } from './errors.js';
export {
  stateStoreConformanceSuite,
  type StateStoreConformanceOptions,
} from './state-store-conformance.js';
