import type { Buffer } from './buffer.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { StateStore } from './state-store.js';
import type { StateBackend } from './keyed-map.js';
import type { DeadLetterQueue } from './dead-letter.js';
import type { DeadLetterDestination } from './dead-letter-destination.js';
import type { Logger } from './logger.js';
import type { PipelineMetrics } from './metrics.js';
import type { CompileTransform } from './operator-chain.js';
import type { RunMode } from './pipeline.js';
import type { PipelineDefinition, StageOptions } from './pipeline-builder.js';
import type { RetryPolicy } from './retry-policy.js';
import type { Serde } from './serde.js';
import type { AnyStage, StageContext } from './stage.js';

/** Everything the tasks and edges of a run need, resolved once per run by runPipeline. */
export interface RuntimeContext {
  readonly def: PipelineDefinition;
  readonly mode: RunMode;
  readonly instance: string;
  /** Unique per run (end-of-stream markers carry it). */
  readonly runId: string;
  readonly logger: Logger;
  readonly buffer: Buffer;
  readonly store: CheckpointStore | undefined;
  /** Where transform stages on a buffer keep their partition state shards (RunOptions.stateStore). */
  readonly stateStore: StateStore | undefined;
  /** True when RunOptions.stateStore was given (not the file store implied by checkpointDir). */
  readonly stateStoreChosen: boolean;
  readonly compile: CompileTransform;
  readonly metrics: PipelineMetrics;
  readonly deadLetters: DeadLetterDestination;
  /** Aborted on a graceful stop or a failure. */
  readonly signal: AbortSignal;
  readonly batchSize: number;
  readonly pollTimeoutMs: number;
  readonly tickIntervalMs: number;
  /** Processing time for watermark idleness (RunOptions.clock, default Date.now). */
  readonly clock: () => number;
  readonly checkpointIntervalMs: number;
  retryPolicy(): RetryPolicy;
  /** Records the first failure and stops every unit of the run. */
  fail(error: unknown): void;
  /** True once something failed (as opposed to a graceful stop). */
  failed(): boolean;
  stageOptions(stageId: string): StageOptions;
  /** Where a stage's keyed operators keep their state (StageOptions, then RunOptions.stateBackend). */
  stateBackendOf(stageId: string): StateBackend;
  topicOf(stageId: string): string;
  groupOf(stageId: string): string;
  serdeOf(stageId: string): Serde;
  stageContext(stage: AnyStage): StageContext;
  deadLetterQueue(stage: AnyStage): DeadLetterQueue;
}
