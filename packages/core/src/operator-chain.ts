/**
 * The one interface between the runtime (StageTask) and the dataflow engine (DataStream
 * graph -> fused operators, compile-transform.ts).
 *
 * Agreement:
 * - compile-transform.ts must not import any runtime module (pipeline*.ts, runtime*.ts,
 *   stage-task.ts, *-run.ts), so the runtime imports it directly without an import cycle.
 * - The runtime calls `compileTransform(stage, ctx, { deadLetter, retries })` once per
 *   transform stage instance, then drives the chain batch by batch, synchronously.
 * - A user function that throws is retried up to `retries` times on that record; then the
 *   chain calls `deadLetter(record, error, attempts, inputIndex)` and carries on with the rest
 *   of the batch. The chain never throws for a per-record failure.
 * - `snapshotState()` is called at batch boundaries only (between processBatch/tick calls);
 *   `restoreState()` before the first batch after a restart.
 */
import type { StateFilter } from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { StageContext, TransformStage } from './stage.js';
import type { StateBackend } from './keyed-map.js';

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
  /**
   * The channels feeding input `inputIndex` from now on: the buffer partitions assigned to
   * this consumer, or the upstream stage inline. Each new one holds event time back (at -inf)
   * until it delivers or goes idle (idle timer from this call); channels not listed are
   * revoked and stop holding it back, which may fire timers/windows (returned). Optional: a
   * chain never told learns a channel from its first batch.
   */
  assignChannels?(inputIndex: number, channels: readonly string[]): StreamRecord<Out>[];
  /** Processing-time tick: lets idle channels stop holding the watermark back; may fire timers/windows. */
  tick(nowMs: number): StreamRecord<Out>[];
  /** All inputs ended (bounded): fire every pending timer/window (watermark +infinity). */
  finish(): StreamRecord<Out>[];
  /**
   * The chain's state, or with a filter only the keys and channels it keeps (one state shard:
   * see state-shards.ts); watermarks, which belong to no key, are in every shard.
   */
  snapshotState(filter?: StateFilter): JsonValue;
  /**
   * Replaces the state with a snapshot's, or with `merge` adds a shard's keys to it and fires
   * what is due at once; `fireDue: false` holds that back (more of the shard follows).
   */
  restoreState(state: JsonValue, merge?: boolean, fireDue?: boolean): void;
  /**
   * From now on, adds to the returned set every key whose state (values, timers, windows) an
   * operator may have changed; the caller clears what it has saved. Incremental checkpoints
   * save only those keys. Optional: a chain without it is checkpointed whole.
   */
  trackChangedKeys?(): Set<string>;
  /**
   * Back to the chain as built: no keys, no channels, every watermark at -inf, nothing fired and
   * not yet returned. A worker whose transaction was aborted redoes its batches from the
   * committed state, as a restarted worker would. Optional: without it such a worker fails.
   */
  reset?(): void;
  /** Forgets the keys and channels `filter` keeps (a shard handed to another worker). Optional. */
  dropState?(filter: StateFilter): void;
  /** True when an operator keeps state per key (keyed state, timers, windows): it is sharded. */
  readonly keyed?: boolean;
  /**
   * Inputs that feed `broadcast()`: every worker of the stage reads them whole, from their
   * beginning, and rebuilds the broadcast state from them at each start (buffer-run.ts).
   * Optional: none.
   */
  readonly broadcastInputs?: readonly number[];
  /** The stage's named outputs, in declared order (see TransformOutputs). Optional: none. */
  readonly outputNames?: readonly string[];
  /**
   * What each named output (in `outputNames` order) emitted since the last call: the runtime
   * takes them after every call that returns the main output's records.
   */
  takeNamedOutputs?(): StreamRecord<unknown>[][];
  /** Current event-time watermark of the chain (for metrics); -Infinity when none yet. Optional. */
  currentWatermark?(): number;
  /** Releases what the state backend holds (a disk backend's files). Optional; call once, at the end. */
  close?(): void;
}

export interface DeadLetterSink {
  (record: StreamRecord, error: unknown, attempts: number, inputIndex: number): void;
}

export interface CompileOptions {
  deadLetter: DeadLetterSink;
  retries: number;
  /**
   * Processing time (epoch ms) as the chain sees it: idleness timeouts measure against it.
   * Default `Date.now`; the test kit injects a fake clock.
   */
  clock?: () => number;
  /** Where keyed operators keep their state (default `memoryStateBackend`). */
  stateBackend?: StateBackend;
}

export type CompileTransform = (
  stage: TransformStage,
  ctx: StageContext,
  options: CompileOptions,
) => OperatorChain;
