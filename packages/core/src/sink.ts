import type { StreamRecord } from './record.js';

/**
 * Where an output stage's records go. `write` may buffer; `flush` resolves only when
 * every record written so far is durable (this is what lets the runtime commit source
 * positions after it: at-least-once). Idempotent sinks (upsert by key) turn replays
 * after a crash into exactly-once results.
 */
export interface Sink<T> {
  write(batch: readonly StreamRecord<T>[]): void | Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
