import type {
  AggregateFunction,
  AggregatingState,
  KeyedStateAccess,
  ListState,
  MapState,
  ReducingState,
  StateOptions,
  StateTtlConfig,
  ValueState,
} from './datastream.js';
import { CodefeedrError } from './errors.js';
import type { StateFilter } from './operators.js';
import type { JsonValue } from './record.js';
import {
  type KeyedMap,
  type KeyedMapCodec,
  memoryStateBackend,
  type OperatorStateBackend,
} from './keyed-map.js';

/*
 * Keyed state of one keyed process operator (Flink's heap keyed state backend with its TTL
 * decorators, flink-runtime state/ttl). Each named state is a Map from the current key to
 * its value; with TTL each value, list element or map entry is stored as `{ v, t }`, `t`
 * being the processing time it was last written (or read, with OnReadAndWrite). Every
 * operation is synchronous; state values must be JSON values (checkpoints are JSON).
 * The maps come from the operator's state backend (keyed-map.ts): on the disk backend a
 * value changed in place must be stored again (`touch`), or the change is lost when the
 * entry leaves the cache.
 */

/** A state used as two kinds, or checkpointed as another kind than it is declared now. */
export class StateDeclarationError extends CodefeedrError {
  constructor(
    stageId: string,
    operator: string,
    name: string,
    problem: string,
    code: 'DATAFLOW_GRAPH_INVALID' | 'STATE_INCOMPATIBLE' = 'DATAFLOW_GRAPH_INVALID',
  ) {
    super(
      code,
      `Stage "${stageId}", ${operator}: state "${name}" ${problem}. A state name holds one kind of state: give each state its own name.`,
      { stageId, operator, state: name },
    );
  }
}

export type StateKind = 'value' | 'list' | 'map' | 'reducing' | 'aggregating';

const KIND_NAMES: Record<StateKind, string> = {
  value: 'ValueState',
  list: 'ListState',
  map: 'MapState',
  reducing: 'ReducingState',
  aggregating: 'AggregatingState',
};

/** A value with its last access time (Flink's TtlValue). */
interface Stamped {
  v: unknown;
  t: number;
}

/** A StateTtlConfig checked and resolved to its defaults. */
class Ttl {
  constructor(
    readonly ms: number,
    /** OnReadAndWrite: a read renews the entry. */
    readonly onRead: boolean,
    /** ReturnExpiredIfNotCleanedUp: an expired entry is returned once more, then removed. */
    readonly returnExpired: boolean,
  ) {}

  expired(s: Stamped, now: number): boolean {
    return s.t + this.ms <= now;
  }

  toJson(): JsonValue {
    return {
      ttlMs: this.ms,
      updateType: this.onRead ? 'OnReadAndWrite' : 'OnCreateAndWrite',
      visibility: this.returnExpired ? 'ReturnExpiredIfNotCleanedUp' : 'NeverReturnExpired',
    };
  }
}

/** Checks a TTL config; the problem, if any, as a sentence fragment. */
function resolveTtl(config: StateTtlConfig | undefined): Ttl | string | undefined {
  if (config === undefined) return undefined;
  const { ttlMs, updateType = 'OnCreateAndWrite', visibility = 'NeverReturnExpired' } = config;
  if (typeof ttlMs !== 'number' || !(ttlMs > 0) || !Number.isFinite(ttlMs)) {
    return `has ttl.ttlMs ${String(ttlMs)}: it must be a positive finite number of milliseconds`;
  }
  if (updateType !== 'OnCreateAndWrite' && updateType !== 'OnReadAndWrite') {
    return `has ttl.updateType "${String(updateType)}": use OnCreateAndWrite or OnReadAndWrite`;
  }
  if (visibility !== 'NeverReturnExpired' && visibility !== 'ReturnExpiredIfNotCleanedUp') {
    return `has ttl.visibility "${String(visibility)}": use NeverReturnExpired or ReturnExpiredIfNotCleanedUp`;
  }
  return new Ttl(
    ttlMs,
    updateType === 'OnReadAndWrite',
    visibility === 'ReturnExpiredIfNotCleanedUp',
  );
}

/** What every state reads: the current key and processing time, and where its map comes from. */
interface StateScope {
  readonly currentKey: string;
  readonly now: () => number;
  readonly backend: OperatorStateBackend;
}

/** MapState keeps a Map per key: as text, its entries in insertion order. */
const mapStateCodec: KeyedMapCodec<Map<string, unknown>> = {
  encode: (inner) => JSON.stringify([...inner]),
  decode: (text) => new Map(JSON.parse(text) as [string, unknown][]),
};

function refuseUndefined(kind: StateKind, value: unknown): void {
  if (value === undefined) {
    throw new TypeError(`${KIND_NAMES[kind]} cannot hold undefined (state values are JSON).`);
  }
}

abstract class KeyedStateBase {
  abstract readonly kind: StateKind;
  /** key -> the state's value for that key (stamped per value, element or entry with TTL). */
  readonly data: KeyedMap;
  /** Declared in this operator's lifetime (a restored state is not until its first use). */
  declared = false;
  /** The map keeps values off the heap: a value changed in place is stored again. */
  private readonly persistent: boolean;

  constructor(
    protected readonly scope: StateScope,
    public ttl: Ttl | undefined,
  ) {
    this.persistent = scope.backend.persistent;
    this.data = scope.backend.map(this.codec());
  }

  protected codec(): KeyedMapCodec | undefined {
    return undefined;
  }

  /** After changing `stored` (held by `data` under `key`) in place. A no-op in memory. */
  protected touch(key: string, stored: unknown): void {
    if (this.persistent) this.data.set(key, stored);
  }

  clear(): void {
    this.data.delete(this.scope.currentKey);
  }

  /** Switches between plain and stamped values (a TTL added or removed since the checkpoint). */
  retime(ttl: Ttl | undefined): void {
    if ((ttl === undefined) !== (this.ttl === undefined)) {
      const now = this.scope.now();
      const convert =
        ttl === undefined ? (s: unknown) => (s as Stamped).v : (v: unknown) => ({ v, t: now });
      for (const [key, stored] of this.data) this.data.set(key, this.mapValues(stored, convert));
    }
    this.ttl = ttl;
  }

  /** Applies `f` to every plain or stamped value of one key's stored data. */
  protected abstract mapValues(stored: unknown, f: (value: unknown) => unknown): unknown;

  /**
   * Removes expired values (a checkpoint must not keep them), then the JSON of what is left
   * (of the keys `filter` keeps).
   */
  snapshot(now: number, filter?: StateFilter): JsonValue {
    const ttl = this.ttl;
    const out: JsonValue[] = [];
    for (const [key, stored] of this.data) {
      if (filter !== undefined && !filter.key(key)) continue;
      const json = this.storedToJson(key, stored, ttl, now);
      if (json === undefined) this.data.delete(key);
      else out.push([key, json]);
    }
    return out;
  }

  /** One key's data as JSON, without expired values (removed); undefined when nothing is left. */
  protected abstract storedToJson(
    key: string,
    stored: unknown,
    ttl: Ttl | undefined,
    now: number,
  ): JsonValue | undefined;

  restore(pairs: JsonValue, merge = false): void {
    if (!merge) this.data.clear();
    for (const [key, json] of pairs as [string, JsonValue][]) {
      this.data.set(key, this.storedFromJson(json, this.ttl !== undefined));
    }
  }

  protected abstract storedFromJson(json: JsonValue, stamped: boolean): unknown;
}

/** Value, reducing and aggregating state: one (stamped) value per key. */
abstract class SingleValueState extends KeyedStateBase {
  /** The key's value with TTL checks: expired values are removed (and hidden unless ReturnExpired). */
  protected read(): unknown {
    const key = this.scope.currentKey;
    const stored = this.data.get(key);
    const ttl = this.ttl;
    if (ttl === undefined || stored === undefined) return stored;
    // Flink's getWrappedWithTtlCheckAndUpdate: an expired value is removed on access.
    const s = stored as Stamped;
    const now = this.scope.now();
    if (ttl.expired(s, now)) {
      this.data.delete(key);
      return ttl.returnExpired ? s.v : undefined;
    }
    if (ttl.onRead) {
      s.t = now;
      this.touch(key, s);
    }
    return s.v;
  }

  /** The value a write builds on (Flink's getUnexpired): neither renews nor removes. */
  protected current(): unknown {
    const stored = this.data.get(this.scope.currentKey);
    const ttl = this.ttl;
    if (ttl === undefined || stored === undefined) return stored;
    const s = stored as Stamped;
    return ttl.returnExpired || !ttl.expired(s, this.scope.now()) ? s.v : undefined;
  }

  protected write(value: unknown): void {
    const key = this.scope.currentKey;
    if (value === undefined) this.data.delete(key);
    else this.data.set(key, this.ttl === undefined ? value : { v: value, t: this.scope.now() });
  }

  protected mapValues(stored: unknown, f: (value: unknown) => unknown): unknown {
    return f(stored);
  }

  protected storedToJson(
    key: string,
    stored: unknown,
    ttl: Ttl | undefined,
    now: number,
  ): JsonValue | undefined {
    if (ttl === undefined) return stored as JsonValue;
    const s = stored as Stamped;
    return ttl.expired(s, now) ? undefined : [s.v as JsonValue, s.t];
  }

  protected storedFromJson(json: JsonValue, stamped: boolean): unknown {
    if (!stamped) return json;
    const [v, t] = json as [JsonValue, number];
    return { v, t };
  }
}

class ValueStateImpl extends SingleValueState implements ValueState<unknown> {
  readonly kind = 'value';
  value(): unknown {
    return this.read();
  }
  update(value: unknown): void {
    this.write(value);
  }
}

class ReducingStateImpl extends SingleValueState implements ReducingState<unknown> {
  readonly kind = 'reducing';
  /** Given at declaration (Flink's ReducingStateDescriptor); a later call's function is ignored. */
  reduce: ((accumulator: unknown, value: unknown) => unknown) | undefined;
  get(): unknown {
    return this.read();
  }
  add(value: unknown): void {
    refuseUndefined(this.kind, value);
    const previous = this.current();
    // Computed before storing: a reduce that throws leaves the state as it was.
    this.write(previous === undefined ? value : this.reduce!(previous, value));
  }
}

class AggregatingStateImpl extends SingleValueState implements AggregatingState<unknown, unknown> {
  readonly kind = 'aggregating';
  fn: AggregateFunction<unknown, unknown, unknown> | undefined;
  get(): unknown {
    const acc = this.read();
    return acc === undefined ? undefined : this.fn!.getResult(acc);
  }
  add(value: unknown): void {
    const fn = this.fn!;
    const previous = this.current();
    this.write(fn.add(value, previous === undefined ? fn.createAccumulator() : previous));
  }
}

class ListStateImpl extends KeyedStateBase implements ListState<unknown> {
  readonly kind = 'list';

  get(): unknown[] {
    const key = this.scope.currentKey;
    const list = this.data.get(key) as unknown[] | undefined;
    if (list === undefined) return [];
    const ttl = this.ttl;
    if (ttl === undefined) return list.slice();
    // Per element, as Flink's TtlListState: expired ones are removed as the list is read.
    const now = this.scope.now();
    const out: unknown[] = [];
    let kept = 0;
    for (const s of list as Stamped[]) {
      if (ttl.expired(s, now)) {
        if (ttl.returnExpired) out.push(s.v);
        continue;
      }
      if (ttl.onRead) s.t = now;
      out.push(s.v);
      list[kept++] = s;
    }
    const changed = kept < list.length || ttl.onRead;
    list.length = kept;
    if (kept === 0) this.data.delete(key);
    else if (changed) this.touch(key, list);
    return out;
  }

  add(value: unknown): void {
    refuseUndefined(this.kind, value);
    this.append([value]);
  }

  addAll(values: readonly unknown[]): void {
    for (const v of values) refuseUndefined(this.kind, v);
    if (values.length > 0) this.append(values);
  }

  update(values: readonly unknown[]): void {
    for (const v of values) refuseUndefined(this.kind, v);
    this.data.delete(this.scope.currentKey);
    if (values.length > 0) this.append(values);
  }

  private append(values: readonly unknown[]): void {
    const key = this.scope.currentKey;
    let list = this.data.get(key) as unknown[] | undefined;
    if (list === undefined) this.data.set(key, (list = []));
    if (this.ttl === undefined) {
      for (const v of values) list.push(v);
    } else {
      const t = this.scope.now();
      for (const v of values) list.push({ v, t });
    }
    this.touch(key, list);
  }

  protected mapValues(stored: unknown, f: (value: unknown) => unknown): unknown {
    return (stored as unknown[]).map(f);
  }

  protected storedToJson(
    key: string,
    stored: unknown,
    ttl: Ttl | undefined,
    now: number,
  ): JsonValue | undefined {
    if (ttl === undefined) return (stored as JsonValue[]).slice();
    const list = stored as Stamped[];
    let kept = 0;
    for (const s of list) if (!ttl.expired(s, now)) list[kept++] = s;
    const changed = kept < list.length;
    list.length = kept;
    if (kept === 0) return undefined;
    if (changed) this.touch(key, list);
    return list.map((s) => [s.v as JsonValue, s.t]);
  }

  protected storedFromJson(json: JsonValue, stamped: boolean): unknown {
    const list = json as JsonValue[];
    return stamped ? (list as [JsonValue, number][]).map(([v, t]) => ({ v, t })) : list.slice();
  }
}

class MapStateImpl extends KeyedStateBase implements MapState<string, unknown> {
  readonly kind = 'map';

  protected override codec(): KeyedMapCodec {
    return mapStateCodec as KeyedMapCodec;
  }

  private inner(): Map<string, unknown> | undefined {
    return this.data.get(this.scope.currentKey) as Map<string, unknown> | undefined;
  }

  /** Reads one entry with the TTL rule (values are never undefined: undefined is absent or hidden). */
  private readEntry(inner: Map<string, unknown>, key: string, now: number): unknown {
    const stored = inner.get(key);
    const ttl = this.ttl;
    if (ttl === undefined || stored === undefined) return stored;
    const s = stored as Stamped;
    if (ttl.expired(s, now)) {
      inner.delete(key);
      return ttl.returnExpired ? s.v : undefined;
    }
    if (ttl.onRead) s.t = now;
    return s.v;
  }

  /**
   * After a read or removal: drops `inner` when empty, else stores it again when it may have
   * changed (a removal, or a TTL read that expired or renewed entries).
   */
  private dropIfEmpty(inner: Map<string, unknown>, changed = this.ttl !== undefined): void {
    const key = this.scope.currentKey;
    if (inner.size === 0) this.data.delete(key);
    else if (changed) this.touch(key, inner);
  }

  get(key: string): unknown {
    const inner = this.inner();
    if (inner === undefined) return undefined;
    const value = this.readEntry(inner, key, this.scope.now());
    this.dropIfEmpty(inner);
    return value;
  }

  contains(key: string): boolean {
    if (this.ttl === undefined) return this.inner()?.has(key) ?? false;
    return this.get(key) !== undefined;
  }

  put(key: string, value: unknown): void {
    refuseUndefined(this.kind, value);
    this.putChecked([[key, value]]);
  }

  putAll(entries: Readonly<Partial<Record<string, unknown>>> | ReadonlyMap<string, unknown>): void {
    const list =
      entries instanceof Map
        ? [...(entries as ReadonlyMap<string, unknown>)]
        : Object.entries(entries).filter(([, v]) => v !== undefined);
    for (const [, v] of list) refuseUndefined(this.kind, v);
    if (list.length > 0) this.putChecked(list);
  }

  private putChecked(entries: readonly [string, unknown][]): void {
    let inner = this.inner();
    if (inner === undefined) this.data.set(this.scope.currentKey, (inner = new Map()));
    if (this.ttl === undefined) {
      for (const [k, v] of entries) inner.set(k, v);
    } else {
      const t = this.scope.now();
      for (const [k, v] of entries) inner.set(k, { v, t });
    }
    this.touch(this.scope.currentKey, inner);
  }

  remove(key: string): void {
    const inner = this.inner();
    if (inner === undefined) return;
    this.dropIfEmpty(inner, inner.delete(key));
  }

  /** Visits the visible entries in insertion order until `visit` returns true. */
  private scan(visit: (key: string, value: unknown) => boolean | void): void {
    const inner = this.inner();
    if (inner === undefined) return;
    const now = this.ttl === undefined ? 0 : this.scope.now();
    for (const key of inner.keys()) {
      const value = this.readEntry(inner, key, now);
      if (value !== undefined && visit(key, value) === true) break;
    }
    this.dropIfEmpty(inner);
  }

  entries(): [string, unknown][] {
    const out: [string, unknown][] = [];
    this.scan((k, v) => void out.push([k, v]));
    return out;
  }

  keys(): string[] {
    const out: string[] = [];
    this.scan((k) => void out.push(k));
    return out;
  }

  values(): unknown[] {
    const out: unknown[] = [];
    this.scan((_k, v) => void out.push(v));
    return out;
  }

  /** Reads entries up to the first visible one (Flink: `!iterator().hasNext()`). */
  isEmpty(): boolean {
    let empty = true;
    this.scan(() => {
      empty = false;
      return true;
    });
    return empty;
  }

  protected mapValues(stored: unknown, f: (value: unknown) => unknown): unknown {
    const out = new Map<string, unknown>();
    for (const [k, v] of stored as Map<string, unknown>) out.set(k, f(v));
    return out;
  }

  protected storedToJson(
    key: string,
    stored: unknown,
    ttl: Ttl | undefined,
    now: number,
  ): JsonValue | undefined {
    const inner = stored as Map<string, unknown>;
    const before = inner.size;
    const out: JsonValue[] = [];
    for (const [k, v] of inner) {
      if (ttl === undefined) out.push([k, v as JsonValue]);
      else if (ttl.expired(v as Stamped, now)) inner.delete(k);
      else out.push([k, (v as Stamped).v as JsonValue, (v as Stamped).t]);
    }
    if (out.length === 0) return undefined;
    if (inner.size < before) this.touch(key, inner);
    return out;
  }

  protected storedFromJson(json: JsonValue, stamped: boolean): unknown {
    const inner = new Map<string, unknown>();
    for (const entry of json as JsonValue[]) {
      const [k, v, t] = entry as [string, JsonValue, number];
      inner.set(k, stamped ? { v, t } : v);
    }
    return inner;
  }
}

const CONSTRUCTORS: Record<
  StateKind,
  new (scope: StateScope, ttl: Ttl | undefined) => KeyedStateBase
> = {
  value: ValueStateImpl,
  list: ListStateImpl,
  map: MapStateImpl,
  reducing: ReducingStateImpl,
  aggregating: AggregatingStateImpl,
};

/** The JSON of a state other than a plain ValueState in a checkpoint. */
export interface KeyedStateJson {
  kind: StateKind;
  ttl?: StateTtlConfig;
  entries: JsonValue;
}

/** Every named keyed state of one operator; the operator repoints `currentKey` per call. */
export class KeyedStateStore implements KeyedStateAccess {
  currentKey = '';
  private readonly states = new Map<string, KeyedStateBase>();

  constructor(
    private readonly stageId: string,
    private readonly operator: string,
    readonly now: () => number,
    /** Where the states keep their maps (the memory backend's Maps by default). */
    readonly backend: OperatorStateBackend = memoryStateBackend.open(stageId, operator),
  ) {}

  state<S>(name: string, options?: StateOptions): ValueState<S> {
    return this.declare(name, 'value', options) as unknown as ValueState<S>;
  }

  listState<T>(name: string, options?: StateOptions): ListState<T> {
    return this.declare(name, 'list', options) as unknown as ListState<T>;
  }

  mapState<K extends string, V>(name: string, options?: StateOptions): MapState<K, V> {
    return this.declare(name, 'map', options) as unknown as MapState<K, V>;
  }

  reducingState<T>(
    name: string,
    reduce: (accumulator: T, value: T) => T,
    options?: StateOptions,
  ): ReducingState<T> {
    const state = this.declare(name, 'reducing', options) as ReducingStateImpl;
    state.reduce ??= reduce as (accumulator: unknown, value: unknown) => unknown;
    return state as unknown as ReducingState<T>;
  }

  aggregatingState<IN, ACC, OUT>(
    name: string,
    fn: AggregateFunction<IN, ACC, OUT>,
    options?: StateOptions,
  ): AggregatingState<IN, OUT> {
    const state = this.declare(name, 'aggregating', options) as AggregatingStateImpl;
    state.fn ??= fn as AggregateFunction<unknown, unknown, unknown>;
    return state as unknown as AggregatingState<IN, OUT>;
  }

  private declare(
    name: string,
    kind: StateKind,
    options: StateOptions | undefined,
  ): KeyedStateBase {
    let state = this.states.get(name);
    if (state !== undefined && state.declared) {
      if (state.kind !== kind)
        this.conflict(name, `is a ${KIND_NAMES[state.kind]}, used as a ${KIND_NAMES[kind]}`);
      return state;
    }
    const ttl = resolveTtl(options?.ttl);
    if (typeof ttl === 'string') this.conflict(name, ttl);
    if (state === undefined) {
      state = new CONSTRUCTORS[kind](this, ttl);
      this.states.set(name, state);
    } else if (state.kind !== kind) {
      throw new StateDeclarationError(
        this.stageId,
        this.operator,
        name,
        `was checkpointed as a ${KIND_NAMES[state.kind]} and is declared as a ${KIND_NAMES[kind]}`,
        'STATE_INCOMPATIBLE',
      );
    } else {
      state.retime(ttl);
    }
    state.declared = true;
    return state;
  }

  private conflict(name: string, problem: string): never {
    throw new StateDeclarationError(this.stageId, this.operator, name, problem);
  }

  /**
   * Plain ValueStates as `{ name: [[key, value], ...] }` (the format from before the other
   * kinds, so old checkpoints restore), every other state in `others`; expired values are
   * removed first.
   */
  snapshot(filter?: StateFilter): {
    values: Record<string, JsonValue>;
    others: Record<string, KeyedStateJson>;
  } {
    const now = this.now();
    const values: Record<string, JsonValue> = {};
    const others: Record<string, KeyedStateJson> = {};
    for (const [name, state] of this.states) {
      const entries = state.snapshot(now, filter);
      if (state.kind === 'value' && state.ttl === undefined) values[name] = entries;
      else {
        const json: KeyedStateJson = { kind: state.kind, entries };
        if (state.ttl !== undefined) json.ttl = state.ttl.toJson() as unknown as StateTtlConfig;
        others[name] = json;
      }
    }
    return { values, others };
  }

  /** Replaces the states, or with `merge` adds a shard's keys to them. */
  restore(
    values: Record<string, JsonValue>,
    others: Record<string, KeyedStateJson> = {},
    merge = false,
  ): void {
    if (!merge) {
      // A disk map's rows outlive the map object: empty the file of the states dropped.
      if (this.backend.persistent) for (const state of this.states.values()) state.data.clear();
      this.states.clear();
    }
    for (const [name, entries] of Object.entries(values))
      this.restoreOne(name, { kind: 'value', entries }, merge);
    for (const [name, json] of Object.entries(others)) this.restoreOne(name, json, merge);
  }

  private restoreOne(name: string, json: KeyedStateJson, merge: boolean): void {
    const held = merge ? this.states.get(name) : undefined;
    if (held !== undefined) {
      if (held.kind !== json.kind || (held.ttl === undefined) !== (json.ttl === undefined)) {
        throw new StateDeclarationError(
          this.stageId,
          this.operator,
          name,
          `is held as ${KIND_NAMES[held.kind]} but a restored shard has it as ${String(json.kind)}`,
          'STATE_INCOMPATIBLE',
        );
      }
      held.restore(json.entries, true);
      return;
    }
    const ttl = resolveTtl(json.ttl);
    const Kind = CONSTRUCTORS[json.kind];
    if (Kind === undefined || typeof ttl === 'string') {
      throw new StateDeclarationError(
        this.stageId,
        this.operator,
        name,
        `has checkpointed state this version cannot read (kind ${String(json.kind)})`,
        'STATE_INCOMPATIBLE',
      );
    }
    const state = new Kind(this, ttl);
    state.restore(json.entries);
    this.states.set(name, state);
  }
}
