import type { JsonValue, StreamRecord } from './record.js';

/**
 * Where an input stage's records come from. Pull-based and batch-at-a-time: the runtime
 * awaits `poll` once per batch, never per record.
 *
 * Checkpoint contract: `position()` describes the point just after the last record
 * returned by `poll`. The runtime stores it in the stage's checkpoint once every record
 * before it has been flushed downstream, then calls `commit(position)`. On restart it
 * calls `restore(position)` before the first `poll`, so nothing is skipped or re-read
 * beyond at-least-once.
 */
export interface Source<T> {
  /**
   * The next batch of at most `maxRecords` records. `[]` means nothing right now (the
   * source should have waited a short while first); `null` means the stream has ended
   * (a bounded source), after which the runtime finishes the stage.
   */
  poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<T>[] | null>;
  /** The position just after the last record returned by `poll`. JSON-serialisable. */
  position(): JsonValue;
  /** Resume from a position previously returned by `position()`. */
  restore(position: JsonValue): void | Promise<void>;
  /** Everything up to `position` is durable downstream: acknowledge it upstream. */
  commit?(position: JsonValue): Promise<void>;
  close(): Promise<void>;
}
