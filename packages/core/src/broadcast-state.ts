import type {
  Collector,
  DataStream,
  KeyedProcessContext,
  OnTimerContext,
  OutputTag,
  ProcessContext,
} from './datastream.js';
import { KeyedProcessOperator } from './keyed-operators.js';
import type { OperatorStateBackend } from './keyed-map.js';
import { type FailureHandler, Operator, ScratchRecord, type StateFilter } from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { KeySelector } from './stream-graph.js';

/*
 * Broadcast state (Flink's broadcast state pattern): a rules or configuration input that
 * every worker of the stage reads whole, into maps by name that are the same on every worker,
 * read by the elements of the other input (keyed or not).
 *
 * Where it lives: it belongs to no key and no partition, so partition state shards never
 * carry it. Through a buffer each worker reads the broadcast input from its beginning with a
 * consumer of its own and rebuilds the state from it at every start, before its first other
 * record (Kafka Streams' global tables: the topic is the state's changelog; buffer-run.ts).
 * Inline, where one task reads everything, it is checkpointed with the chain.
 */

/**
 * How long a broadcast input must deliver nothing before a worker reading it ahead of the
 * other inputs takes it as read up (when it has not ended): see BroadcastReadAhead.
 */
export const BROADCAST_QUIET_MS = 1000;

/**
 * The rule for reading broadcast inputs ahead of the others, the same in every run mode: until
 * each has ended, or they delivered nothing for BROADCAST_QUIET_MS. Every record already in a
 * bounded broadcast input is then in the state before any other record is processed; of an
 * unbounded one, what was there when the stage started, unless its producer lagged.
 */
export class BroadcastReadAhead {
  private quietSince: number | undefined;

  /** After each poll of the broadcast inputs: true once they are read up. */
  done(delivered: number, allEnded: boolean, now = Date.now()): boolean {
    if (allEnded) return true;
    if (delivered > 0) this.quietSince = undefined;
    else if (this.quietSince === undefined) this.quietSince = now;
    else if (now - this.quietSince >= BROADCAST_QUIET_MS) return true;
    return false;
  }
}

/** Broadcast state as `processElement` sees it: read only (Flink's ReadOnlyBroadcastState). */
export interface ReadOnlyBroadcastState<V> {
  get(key: string): V | undefined;
  has(key: string): boolean;
  /** The entries in insertion order (a copy: safe to iterate while the state changes). */
  entries(): [string, V][];
  readonly size: number;
}

/**
 * Broadcast state as `processBroadcastElement` sees it. Values must be JSON values; treat a
 * value read from it as immutable (a copy changed on one worker only would make them differ).
 */
export interface BroadcastState<V> extends ReadOnlyBroadcastState<V> {
  set(key: string, value: V): void;
  delete(key: string): boolean;
  clear(): void;
}

/** What `processBroadcastElement` gets (Flink's BroadcastProcessFunction.Context). */
export interface BroadcastContext<B> {
  readonly record: StreamRecord<B>;
  readonly timestamp: number;
  readonly currentWatermark: number;
  output<U>(tag: OutputTag<U>, value: U): void;
  /** The broadcast state `name`, writable. */
  broadcastState<V>(name: string): BroadcastState<V>;
}

/** Read access to the broadcast state from the non-broadcast side. */
export interface ReadOnlyBroadcastAccess {
  broadcastState<V>(name: string): ReadOnlyBroadcastState<V>;
}

/**
 * `stream.connect(rules.broadcast()).process(fn)`: each element of the stream with read
 * access to the broadcast state, each broadcast element with write access. A value emitted
 * from `processBroadcastElement` is emitted by every worker, and again when a worker rebuilds
 * the state at a restart: emit from `processElement`.
 */
export interface BroadcastProcessFunction<T, B, O> {
  processElement(
    value: T,
    ctx: ProcessContext<T> & ReadOnlyBroadcastAccess,
    out: Collector<O>,
  ): void;
  processBroadcastElement(value: B, ctx: BroadcastContext<B>, out: Collector<O>): void;
}

/**
 * `stream.keyBy(k).connect(rules.broadcast()).process(fn)` (Flink's KeyedBroadcastProcessFunction):
 * elements of the keyed stream have their key's state and timers and read the broadcast
 * state; broadcast elements have no key (and so no keyed state or timers).
 */
export interface KeyedBroadcastProcessFunction<T, B, O> {
  processElement(
    value: T,
    ctx: KeyedProcessContext<T> & ReadOnlyBroadcastAccess,
    out: Collector<O>,
  ): void;
  processBroadcastElement(value: B, ctx: BroadcastContext<B>, out: Collector<O>): void;
  onTimer?(
    timestamp: number,
    ctx: OnTimerContext & ReadOnlyBroadcastAccess,
    out: Collector<O>,
  ): void;
}

/** A stage input marked for broadcast: the second argument of `connect()`. */
export interface BroadcastStream<T> {
  readonly kind: 'broadcast';
  /** Phantom field carrying the element type; never set. */
  readonly __broadcast?: T;
}

export interface BroadcastConnectedStream<T, B> {
  process<O>(fn: BroadcastProcessFunction<T, B, O>): DataStream<O>;
}

export interface KeyedBroadcastConnectedStream<T, B> {
  process<O>(fn: KeyedBroadcastProcessFunction<T, B, O>): DataStream<O>;
}

/** An element of either side of a broadcast-connected stream: 1 for the broadcast side. */
export interface BroadcastTagged {
  s: 0 | 1;
  v: unknown;
}

/** The chain's broadcast state: maps by name, checkpointed only when a filter asks for it. */
export class BroadcastStates {
  private readonly maps = new Map<string, Map<string, unknown>>();
  private readonly readOnlyViews = new Map<string, ReadOnlyBroadcastState<unknown>>();
  private readonly writableViews = new Map<string, BroadcastState<unknown>>();

  private map(name: string): Map<string, unknown> {
    let map = this.maps.get(name);
    if (map === undefined) this.maps.set(name, (map = new Map()));
    return map;
  }

  readOnly<V>(name: string): ReadOnlyBroadcastState<V> {
    let view = this.readOnlyViews.get(name);
    if (view === undefined) {
      const map = this.map(name);
      view = {
        get: (key) => map.get(key),
        has: (key) => map.has(key),
        entries: () => [...map],
        get size() {
          return map.size;
        },
      };
      this.readOnlyViews.set(name, view);
    }
    return view as ReadOnlyBroadcastState<V>;
  }

  writable<V>(name: string): BroadcastState<V> {
    let view = this.writableViews.get(name);
    if (view === undefined) {
      const map = this.map(name);
      const read = this.readOnly(name);
      view = {
        get: read.get,
        has: read.has,
        entries: read.entries,
        get size() {
          return map.size;
        },
        set: (key, value) => {
          if (typeof key !== 'string')
            throw new TypeError(
              `broadcastState("${name}").set: keys are strings, got ${typeof key}`,
            );
          map.set(key, value);
        },
        delete: (key) => map.delete(key),
        clear: () => map.clear(),
      };
      this.writableViews.set(name, view);
    }
    return view as BroadcastState<V>;
  }

  /** Included in a snapshot without a filter (inline checkpoints), or with `filter.broadcast`. */
  static wanted(filter: StateFilter | undefined): boolean {
    return filter === undefined || filter.broadcast === true;
  }

  toJson(): JsonValue {
    const out: Record<string, JsonValue> = {};
    for (const [name, map] of this.maps) out[name] = [...map] as JsonValue;
    return out;
  }

  /** Replaces every map with the snapshot's (absent: left as it is). */
  restore(json: JsonValue | undefined): void {
    if (json === undefined || json === null) return;
    for (const map of this.maps.values()) map.clear();
    for (const [name, pairs] of Object.entries(json as Record<string, [string, unknown][]>)) {
      const map = this.map(name);
      for (const [key, value] of pairs) map.set(key, value);
    }
  }
}

/** The operator a SideContext emits through. */
interface ContextOwner {
  readonly watermark: number;
  emitFrom(record: StreamRecord, value: unknown, timestamp?: number): void;
  sideFrom(tag: string, record: StreamRecord, value: unknown): void;
}

/**
 * The context of one side's elements: broadcast elements get the state writable, the other
 * (non-keyed) side read only. One per operator and side, repointed at each element.
 */
class SideContext implements BroadcastContext<unknown>, Collector<unknown> {
  record: StreamRecord = { value: null, timestamp: 0 };
  constructor(
    private readonly op: ContextOwner,
    private readonly states: BroadcastStates,
    private readonly writable: boolean,
  ) {}
  get timestamp(): number {
    return this.record.timestamp;
  }
  get currentWatermark(): number {
    return this.op.watermark;
  }
  output<U>(tag: OutputTag<U>, value: U): void {
    this.op.sideFrom(tag.id, this.record, value);
  }
  collect(value: unknown, timestamp?: number): void {
    this.op.emitFrom(this.record, value, timestamp);
  }
  broadcastState<V>(name: string): BroadcastState<V> {
    // The read-only view has no setters: a write from processElement is a TypeError.
    return (
      this.writable ? this.states.writable<V>(name) : this.states.readOnly<V>(name)
    ) as BroadcastState<V>;
  }
}

/** Runs a broadcast element through `processBroadcastElement`, dead-lettering it if it throws. */
function processBroadcast(
  failures: FailureHandler,
  name: string,
  ctx: SideContext,
  fn: {
    processBroadcastElement(
      value: unknown,
      ctx: BroadcastContext<unknown>,
      out: Collector<unknown>,
    ): void;
  },
  r: StreamRecord,
  value: unknown,
): void {
  ctx.record = r;
  try {
    fn.processBroadcastElement(value, ctx, ctx);
  } catch (error) {
    failures.recover(error, () => fn.processBroadcastElement(value, ctx, ctx), name, r);
  }
}

/** `connect(broadcast).process(fn)` on a non-keyed stream. */
export class BroadcastProcessOperator extends Operator implements ContextOwner {
  readonly broadcast = new BroadcastStates();
  private readonly elementCtx = new SideContext(this, this.broadcast, false);
  private readonly element = new ScratchRecord();
  private readonly broadcastCtx = new SideContext(this, this.broadcast, true);

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly fn: BroadcastProcessFunction<unknown, unknown, unknown>,
  ) {
    super(failures, name);
  }

  emitFrom(r: StreamRecord, value: unknown, timestamp?: number): void {
    this.emit(value, r.key, timestamp ?? r.timestamp, r.headers);
  }

  sideFrom(tag: string, r: StreamRecord, value: unknown): void {
    this.emitSide(tag, value, r.key, r.timestamp, r.headers);
  }

  protected override receive(r: StreamRecord): void {
    const t = r.value as BroadcastTagged;
    if (t.s === 1) {
      processBroadcast(this.failures, this.name, this.broadcastCtx, this.fn, r, t.v);
      return;
    }
    const ctx = this.elementCtx;
    // The user sees the element itself, not its tagged form (one record, repointed).
    const element = this.element;
    element.key = r.key;
    element.value = t.v;
    element.timestamp = r.timestamp;
    element.headers = r.headers;
    ctx.record = element;
    try {
      this.fn.processElement(t.v, ctx, ctx);
    } catch (error) {
      this.failures.recover(error, () => this.fn.processElement(t.v, ctx, ctx), this.name, r);
    }
  }

  override snapshot(filter?: StateFilter): JsonValue | undefined {
    return BroadcastStates.wanted(filter) ? { broadcast: this.broadcast.toJson() } : undefined;
  }

  override restore(state: JsonValue): void {
    this.broadcast.restore((state as { broadcast?: JsonValue } | null)?.broadcast);
  }
}

/**
 * `keyBy(k).connect(broadcast).process(fn)`: the keyed process operator (state, timers,
 * checkpoints, shards) for the keyed side, with read access to the broadcast state; broadcast
 * elements bypass the key.
 */
export class KeyedBroadcastProcessOperator extends KeyedProcessOperator implements ContextOwner {
  private readonly broadcastStates: BroadcastStates;
  private readonly broadcastCtx: SideContext;

  constructor(
    failures: FailureHandler,
    name: string,
    keySelector: KeySelector,
    private readonly broadcastFn: KeyedBroadcastProcessFunction<unknown, unknown, unknown>,
    clock: () => number,
    backend: OperatorStateBackend | undefined,
  ) {
    const states = new BroadcastStates();
    const onTimer = broadcastFn.onTimer;
    super(
      failures,
      name,
      (t: BroadcastTagged) => keySelector(t.v),
      {
        processElement: (t: BroadcastTagged, ctx, out) =>
          broadcastFn.processElement(
            t.v,
            ctx as KeyedProcessContext<unknown> & ReadOnlyBroadcastAccess,
            out,
          ),
        ...(onTimer === undefined
          ? {}
          : {
              onTimer: (time: number, ctx: OnTimerContext, out: Collector<unknown>) =>
                onTimer.call(
                  broadcastFn,
                  time,
                  ctx as OnTimerContext & ReadOnlyBroadcastAccess,
                  out,
                ),
            }),
      },
      clock,
      backend,
      (name: string) => states.readOnly(name),
    );
    this.broadcastStates = states;
    this.broadcastCtx = new SideContext(this, states, true);
  }

  emitFrom(r: StreamRecord, value: unknown, timestamp?: number): void {
    this.emit(value, r.key, timestamp ?? r.timestamp, r.headers);
  }

  sideFrom(tag: string, r: StreamRecord, value: unknown): void {
    this.emitSide(tag, value, r.key, r.timestamp, r.headers);
  }

  protected override receive(r: StreamRecord): void {
    const t = r.value as BroadcastTagged;
    if (t.s === 1)
      processBroadcast(this.failures, this.name, this.broadcastCtx, this.broadcastFn, r, t.v);
    else super.receive(r);
  }

  override snapshot(filter?: StateFilter): JsonValue {
    const keyed = super.snapshot(filter) as Record<string, JsonValue>;
    if (BroadcastStates.wanted(filter)) keyed.broadcast = this.broadcastStates.toJson();
    return keyed;
  }

  override restore(state: JsonValue, merge = false): void {
    super.restore(state, merge);
    this.broadcastStates.restore((state as { broadcast?: JsonValue }).broadcast);
  }
}
