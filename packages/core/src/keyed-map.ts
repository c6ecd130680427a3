/*
 * The contract between keyed operators and where their state lives (Flink's state backend).
 * A leaf module: the operators, the states and the backends import it, it imports nothing.
 *
 * A JS Map satisfies KeyedMap as it is, so the default (memory) backend hands out plain
 * Maps: the operators' call sites stay monomorphic on Map, and the default path costs no
 * indirection. The disk backend (disk-keyed-map.ts) hands out maps with a bounded cache over
 * a SQLite file.
 */

/**
 * A map from key to one state value: what keyed operators and keyed states keep their state
 * in. `Map<string, V>` is one. Values handed out may be the stored objects: a caller that
 * changes one in place must `set` it again (a disk-backed map otherwise loses the change when
 * the entry leaves its cache). Iteration order is unspecified (insertion order in memory,
 * key order on disk); deleting or setting entries during an iteration is allowed.
 */
export interface KeyedMap<V = unknown> {
  get(key: string): V | undefined;
  has(key: string): boolean;
  set(key: string, value: V): unknown;
  delete(key: string): boolean;
  clear(): void;
  readonly size: number;
  [Symbol.iterator](): Iterator<[string, V]>;
}

/** How a map's values become text when they leave memory (default: JSON). */
export interface KeyedMapCodec<V = unknown> {
  encode(value: V): string;
  decode(text: string): V;
}

/** The state of one operator instance: its maps, released together when the chain closes. */
export interface OperatorStateBackend {
  /** A new, empty map. */
  map<V>(codec?: KeyedMapCodec<V>): KeyedMap<V>;
  /** True when maps keep values outside the JS heap (in-place changes must be `set` again). */
  readonly persistent: boolean;
  /** Releases the maps (a disk backend deletes its file). */
  close(): void;
}

/**
 * Where a stage keeps its keyed state: `memoryStateBackend` (default) or a
 * `DiskStateBackend` (state larger than memory). `RunOptions.stateBackend` selects one per
 * run, `StageOptions.stateBackend` per stage.
 */
export interface StateBackend {
  readonly kind: string;
  /** The state of one operator instance of `stageId` (one per compiled chain). */
  open(stageId: string, operator: string): OperatorStateBackend;
}

const memoryOperatorBackend: OperatorStateBackend = {
  map: <V>() => new Map<string, V>(),
  persistent: false,
  close() {},
};

/** Keyed state in JS Maps on the heap (Flink's HashMapStateBackend): the default. */
export const memoryStateBackend: StateBackend = {
  kind: 'memory',
  open: () => memoryOperatorBackend,
};
