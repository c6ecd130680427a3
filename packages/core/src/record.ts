/** One element of a stream. `timestamp` is event time in epoch milliseconds. */
export interface StreamRecord<T = unknown> {
  /** Partitioning key: records with one key keep their order through every buffer. */
  key?: string | undefined;
  value: T;
  timestamp: number;
  headers?: Record<string, string> | undefined;
}

/** JSON-serialisable value: what positions and checkpoints are made of. */
export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
