import type { StreamRecord } from './record.js';

/**
 * One record a sink could not store, and why (the server's error). The runtime sends it to
 * the stage's dead-letter destination with its original value; the rest of the batch counts
 * as written. This is Benthos' per-message batch error: one bad document never fails a stage.
 */
export interface SinkRecordFailure<T = unknown> {
  readonly record: StreamRecord<T>;
  readonly error: unknown;
}

/** What `write` or `flush` may report: the records that were rejected (none: `void`). */
export interface SinkWriteResult<T = unknown> {
  readonly failed: readonly SinkRecordFailure<T>[];
}

/**
 * Where an output stage's records go. `write` may buffer; `flush` resolves only when
 * every record written so far is durable (this is what lets the runtime commit source
 * positions after it: at-least-once). Idempotent sinks (upsert by key) turn replays
 * after a crash into exactly-once results.
 *
 * Failures: a thrown error fails the whole call; the runtime retries it only when the
 * error is retryable (see `isRetryable`), else the stage fails fast. Records the target
 * refuses for what they are (too large, a constraint, an invalid field name) are not a
 * call failure: return them in `failed` and they are dead-lettered, the rest committed.
 */
export interface Sink<T> {
  /**
   * @param positions Given to a sink that has `positions()`, when its records come through a
   *   buffer: `{ 'topic/partition': next offset }` of the partition the batch came from, to store
   *   in the same transaction as the records (see `positions`).
   */
  write(
    batch: readonly StreamRecord<T>[],
    positions?: Readonly<Record<string, string>>,
  ): void | SinkWriteResult<T> | Promise<void | SinkWriteResult<T>>;
  /**
   * For sinks that store their input positions with their records (Kafka Connect's JDBC sink
   * pattern): what is stored, `{ 'topic/partition': next offset }`, or undefined when this sink
   * does not store them. The runtime reads it at start and whenever partitions are assigned, and
   * never writes a record again that is before a stored position: exactly-once, even for
   * append-only sinks, whatever the group's committed offsets say.
   */
  positions?(): Promise<Readonly<Record<string, unknown>> | undefined>;
  flush(): Promise<void | SinkWriteResult<T>>;
  close(): Promise<void>;
}
