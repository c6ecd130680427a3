/** Turns values into bytes for a buffer and back. Registered by name (`json`, `msgpack`, custom). */
export interface Serde<T = unknown> {
  readonly name: string;
  encode(value: T): Uint8Array;
  /** Throws on malformed input; the runtime turns that into a dead-letter record. */
  decode(bytes: Uint8Array): T;
}
