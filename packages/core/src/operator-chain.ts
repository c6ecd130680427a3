/**
 * The one interface between the runtime (pipeline executor, owned by core-runtime) and the
 * dataflow engine (DataStream graph -> fused operators, owned by core-dataflow).
 *
 * Agreement:
 * - core-dataflow implements `compileTransform` in `src/compile-transform.ts` as
 *   `export const compileTransform: CompileTransform = ...` and index.ts re-exports it.
 *   That module must not import any runtime file (pipeline*.ts, runtime*.ts, stage-runner.ts),
 *   so the runtime can import it directly without an import cycle.
 * - The runtime calls `compileTransform(stage, ctx, { deadLetter, retries })` once per
 *   transform stage instance, then drives the chain batch by batch, synchronously.
 * - A user function that throws is retried up to `retries` times on that record; then the
 *   chain calls `deadLetter(record, error, attempts, inputIndex)` and carries on with the rest
 *   of the batch. The chain never throws for a per-record failure.
 * - `snapshotState()` is called at batch boundaries only (between processBatch/tick calls);
 *   `restoreState()` before the first batch after a restart.
 */
import type { JsonValue, StreamRecord } from './record.js';
import type { StageContext, TransformStage } from './stage.js';

/** Compiled from a TransformStage's DataStream graph by the dataflow engineer's compileTransform(). */
export interface OperatorChain<Out = unknown> {
  /**
   * Push one batch that arrived on input `inputIndex` from `channel` (a buffer partition like
   * "topic/3", or an upstream stage id inline); returns the records emitted (synchronously).
   */
  processBatch(
    inputIndex: number,
    channel: string,
    records: readonly StreamRecord[],
  ): StreamRecord<Out>[];
  /** Processing-time tick: lets idle channels stop holding the watermark back; may fire timers/windows. */
  tick(nowMs: number): StreamRecord<Out>[];
  /** All inputs ended (bounded): fire every pending timer/window (watermark +infinity). */
  finish(): StreamRecord<Out>[];
  snapshotState(): JsonValue;
  restoreState(state: JsonValue): void;
  /** Current event-time watermark of the chain (for metrics); -Infinity when none yet. Optional. */
  currentWatermark?(): number;
}

export interface DeadLetterSink {
  (record: StreamRecord, error: unknown, attempts: number, inputIndex: number): void;
}

export type CompileTransform = (
  stage: TransformStage,
  ctx: StageContext,
  options: { deadLetter: DeadLetterSink; retries: number },
) => OperatorChain;

let registeredCompiler: CompileTransform | undefined;

/**
 * Registration point so a compiler can be plugged in without the runtime importing it
 * (tests, alternative engines). The runtime prefers, in order: `RunOptions.compileTransform`,
 * a compiler registered here, then core-dataflow's `compileTransform`.
 */
export function registerTransformCompiler(compiler: CompileTransform | undefined): void {
  registeredCompiler = compiler;
}

export function registeredTransformCompiler(): CompileTransform | undefined {
  return registeredCompiler;
}
