import type {
  AggregateFunction,
  AggregatingState,
  Collector,
  KeyedProcessContext,
  KeyedProcessFunction,
  ListState,
  MapState,
  OnTimerContext,
  OutputTag,
  ReducingState,
  StateOptions,
  TimeDomain,
  TimerService,
  ValueState,
} from './datastream.js';
import {
  encodeTime,
  FAILED,
  type FailureHandler,
  KeyTypeError,
  Operator,
  restoredTime,
  ScratchRecord,
  type StateFilter,
} from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { KeySelector } from './stream-graph.js';
import { freshCopy } from './operator-specialization.js';
import { type KeyedStateJson, KeyedStateStore, StateDeclarationError } from './keyed-state.js';
import { KeyedTimers } from './timer-queue.js';
import type { KeyedMap, OperatorStateBackend } from './keyed-map.js';
import type { ReadOnlyBroadcastState } from './broadcast-state.js';

/*
 * Keyed operators: state is a KeyedMap from key to value, one per operator (all of a stage's
 * operators run on one thread, so no locking): a plain Map on the memory backend, a cached
 * SQLite table on the disk one (keyed-map.ts). Checkpoints write the maps out as
 * [key, value] pairs, so state values must be JSON values.
 */

function entries(map: KeyedMap, filter: StateFilter | undefined): JsonValue {
  const out: JsonValue[] = [];
  for (const [k, v] of map)
    if (filter === undefined || filter.key(k)) out.push([k, v as JsonValue]);
  return out;
}

function fillMap(map: KeyedMap, pairs: JsonValue | undefined, merge: boolean): void {
  if (!merge) map.clear();
  for (const pair of (pairs ?? []) as [string, JsonValue][]) map.set(pair[0], pair[1]);
}

/**
 * Applies the key selector, dead-lettering the record if it throws; a key that is not a
 * string throws KeyTypeError (fails the stage).
 */
export function selectKey(
  op: Operator,
  failures: FailureHandler,
  selector: KeySelector,
  r: StreamRecord,
): string | typeof FAILED {
  let key: string | typeof FAILED;
  try {
    key = selector(r.value);
  } catch (error) {
    key = failures.recover(error, () => selector(r.value), `keyBy of ${op.name}`, r);
  }
  if (typeof key === 'string' || key === FAILED) return key;
  throw new KeyTypeError(failures.stageId, op.name, key);
}

/** keyed reduce's push, self-contained for freshCopy (uses only its parameters). */
function keyedReducePush(
  op: Operator,
  keySelector: KeySelector,
  fn: (accumulator: unknown, value: unknown) => unknown,
  state: KeyedMap,
  failures: FailureHandler,
  failed: typeof FAILED,
  out: ScratchRecord,
  keyTypeError: typeof KeyTypeError,
): (r: StreamRecord) => void {
  return function keyedReducePush(r: StreamRecord): void {
    let key: string | typeof failed;
    try {
      key = keySelector(r.value);
    } catch (error) {
      key = failures.recover(error, () => keySelector(r.value), `keyBy of ${op.name}`, r);
      if (key === failed) return;
    }
    // Plain-JS selectors can return anything; stringifying would merge distinct keys.
    if (typeof key !== 'string') throw new keyTypeError(failures.stageId, op.name, key);
    const previous = state.get(key);
    let next: unknown;
    if (previous === undefined && !state.has(key)) {
      next = r.value;
    } else {
      try {
        next = fn(previous, r.value);
      } catch (error) {
        next = failures.recover(error, () => fn(previous, r.value), op.name, r);
        if (next === failed) return;
      }
    }
    state.set(key, next);
    op.changedKeys?.add(key);
    out.key = key;
    out.value = next;
    out.timestamp = r.timestamp;
    out.headers = r.headers;
    op.next.push(out);
  };
}

/** keyBy().reduce(): emits the running reduction of the record's key, per record (as Flink). */
export class KeyedReduceOperator extends Operator {
  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly fn: (accumulator: unknown, value: unknown) => unknown,
    /** A Map by default; the disk backend's map for state larger than memory. */
    private readonly state: KeyedMap = new Map<string, unknown>(),
  ) {
    super(failures, name);
    this.specializeWith(keyedReducePush);
  }

  private specializeWith(factory: typeof keyedReducePush): void {
    this.push = factory(
      this,
      this.keySelector,
      this.fn,
      this.state,
      this.failures,
      FAILED,
      this.out,
      KeyTypeError,
    );
  }

  override specialize(): void {
    this.specializeWith(freshCopy(keyedReducePush));
  }

  override snapshot(filter?: StateFilter): JsonValue {
    return { state: entries(this.state, filter) };
  }

  override restore(state: JsonValue, merge = false): void {
    fillMap(this.state, (state as { state: JsonValue }).state, merge);
  }
}

/** keyBy().aggregate(): emits getResult of the key's running accumulator, per record. */
export class KeyedAggregateOperator extends Operator {
  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly fn: AggregateFunction<unknown, unknown, unknown>,
    private readonly state: KeyedMap = new Map<string, unknown>(),
  ) {
    super(failures, name);
  }

  protected override receive(r: StreamRecord): void {
    const key = selectKey(this, this.failures, this.keySelector, r);
    if (key === FAILED) return;
    let result: unknown;
    try {
      result = this.step(key, r.value);
    } catch (error) {
      result = this.failures.recover(error, () => this.step(key, r.value), this.name, r);
      if (result === FAILED) return;
    }
    this.emit(result, key, r.timestamp, r.headers);
  }

  private step(key: string, value: unknown): unknown {
    const fn = this.fn;
    const state = this.state;
    let acc = state.get(key);
    if (acc === undefined && !state.has(key)) acc = fn.createAccumulator();
    // Computed before storing, so a throwing add/getResult leaves the state as it was.
    const next = fn.add(value, acc);
    const result = fn.getResult(next);
    state.set(key, next);
    this.changedKeys?.add(key);
    return result;
  }

  override snapshot(filter?: StateFilter): JsonValue {
    return { state: entries(this.state, filter) };
  }

  override restore(state: JsonValue, merge = false): void {
    fillMap(this.state, (state as { state: JsonValue }).state, merge);
  }
}

/**
 * The context handed to processElement and onTimer: one object, repointed per call, that
 * is also the Collector and the TimerService.
 */
class KeyedContext implements KeyedProcessContext<unknown>, OnTimerContext, Collector<unknown> {
  record: StreamRecord = new ScratchRecord();
  key = '';
  timestamp = 0;
  domain: TimeDomain = 'event';

  constructor(
    private readonly op: KeyedProcessOperator,
    private readonly store: KeyedStateStore,
    readonly timerService: TimerService,
    private readonly broadcastRead?: (name: string) => ReadOnlyBroadcastState<unknown>,
  ) {}

  /** Read access to the broadcast state, in a keyed broadcast process function only. */
  broadcastState<V>(name: string): ReadOnlyBroadcastState<V> {
    if (this.broadcastRead === undefined)
      throw new TypeError(
        'broadcastState() is only in the functions of keyBy().connect(stream.broadcast()).process()',
      );
    return this.broadcastRead(name) as ReadOnlyBroadcastState<V>;
  }

  get currentWatermark(): number {
    return this.op.watermark;
  }
  timeDomain(): TimeDomain {
    return this.domain;
  }
  state<S>(name: string, options?: StateOptions): ValueState<S> {
    return this.store.state(name, options);
  }
  listState<T>(name: string, options?: StateOptions): ListState<T> {
    return this.store.listState(name, options);
  }
  mapState<K extends string, V>(name: string, options?: StateOptions): MapState<K, V> {
    return this.store.mapState(name, options);
  }
  reducingState<T>(
    name: string,
    reduce: (accumulator: T, value: T) => T,
    options?: StateOptions,
  ): ReducingState<T> {
    return this.store.reducingState(name, reduce, options);
  }
  aggregatingState<IN, ACC, OUT>(
    name: string,
    fn: AggregateFunction<IN, ACC, OUT>,
    options?: StateOptions,
  ): AggregatingState<IN, OUT> {
    return this.store.aggregatingState(name, fn, options);
  }
  /** `timestamp`: what the interval join emits with (the pair's); default the element's. */
  output<U>(tag: OutputTag<U>, value: U, timestamp?: number): void {
    this.op.side(tag.id, value, this.key, timestamp ?? this.timestamp, this.record.headers);
  }
  collect(value: unknown, timestamp?: number): void {
    this.op.forward(value, this.key, timestamp ?? this.timestamp, this.record.headers);
  }
}

/**
 * keyBy().process(): keyed state (keyed-state.ts) and event- and processing-time timers
 * (Flink's KeyedProcessFunction on a KeyedProcessOperator).
 */
export class KeyedProcessOperator extends Operator {
  private readonly store: KeyedStateStore;
  private readonly eventTimers = new KeyedTimers();
  private readonly processingTimers = new KeyedTimers();
  private readonly ctx: KeyedContext;

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly fn: KeyedProcessFunction<unknown, unknown>,
    clock: () => number = Date.now,
    backend?: OperatorStateBackend,
    /** A keyed broadcast process operator's read access to its broadcast state. */
    broadcastRead?: (name: string) => ReadOnlyBroadcastState<unknown>,
  ) {
    super(failures, name);
    const store = (this.store = new KeyedStateStore(failures.stageId, name, clock, backend));
    this.ctx = new KeyedContext(
      this,
      store,
      {
        currentWatermark: () => this.watermark,
        registerEventTimeTimer: (t) => this.eventTimers.register(store.currentKey, t),
        deleteEventTimeTimer: (t) => this.eventTimers.delete(store.currentKey, t),
        currentProcessingTime: clock,
        registerProcessingTimeTimer: (t) => this.processingTimers.register(store.currentKey, t),
        deleteProcessingTimeTimer: (t) => this.processingTimers.delete(store.currentKey, t),
      },
      broadcastRead,
    );
  }

  forward(
    value: unknown,
    key: string,
    timestamp: number,
    headers: Record<string, string> | undefined,
  ): void {
    this.emit(value, key, timestamp, headers);
  }

  side(
    tagId: string,
    value: unknown,
    key: string,
    timestamp: number,
    headers: Record<string, string> | undefined,
  ): void {
    this.emitSide(tagId, value, key, timestamp, headers);
  }

  protected override receive(r: StreamRecord): void {
    const key = selectKey(this, this.failures, this.keySelector, r);
    if (key === FAILED) return;
    const ctx = this.ctx;
    this.store.currentKey = key;
    // Any state of the key may change in processElement (or its timers).
    this.changedKeys?.add(key);
    ctx.key = key;
    ctx.record = r;
    ctx.timestamp = r.timestamp;
    try {
      this.fn.processElement(r.value, ctx, ctx);
    } catch (error) {
      // A state used as two kinds is a wrong program, not bad data: fail the stage.
      if (error instanceof StateDeclarationError) throw error;
      this.failures.recover(error, () => this.fn.processElement(r.value, ctx, ctx), this.name, r);
    }
  }

  protected override onWatermark(watermark: number): void {
    this.fireTimers(this.eventTimers, watermark, 'event');
  }

  /** Processing time reached `now` (a tick): fires the processing-time timers due. */
  onProcessingTime(now: number): void {
    this.fireTimers(this.processingTimers, now, 'processing');
  }

  /** Fires every timer up to `time` in time order, those registered meanwhile included (Flink). */
  private fireTimers(timers: KeyedTimers, time: number, domain: TimeDomain): void {
    const onTimer = this.fn.onTimer;
    const ctx = this.ctx;
    for (let timer = timers.pollDue(time); timer !== undefined; timer = timers.pollDue(time)) {
      // A fired timer leaves its key's timers (and maybe its state) changed.
      this.changedKeys?.add(timer.key);
      if (onTimer === undefined) continue;
      const { key, time: at } = timer;
      this.store.currentKey = key;
      ctx.key = key;
      ctx.timestamp = at;
      ctx.domain = domain;
      ctx.record = { key, value: null, timestamp: at };
      try {
        onTimer.call(this.fn, at, ctx, ctx);
      } catch (error) {
        if (error instanceof StateDeclarationError) throw error;
        this.failures.recover(
          error,
          () => onTimer.call(this.fn, at, ctx, ctx),
          `onTimer of ${this.name}`,
          {
            key,
            value: domain === 'event' ? { timer: at } : { timer: at, timeDomain: domain },
            timestamp: at,
          },
        );
      } finally {
        ctx.domain = 'event';
      }
    }
  }

  override snapshot(filter?: StateFilter): JsonValue {
    const { values, others } = this.store.snapshot(filter);
    const snapshot: Record<string, JsonValue> = {
      watermark: encodeTime(this.watermark),
      states: values,
      timers: this.eventTimers.toJson(filter),
    };
    // Written only when used, so checkpoints of ValueState-only operators keep their shape.
    if (Object.keys(others).length > 0) snapshot.keyedStates = others as unknown as JsonValue;
    const processing = this.processingTimers.toJson(filter);
    if (processing.length > 0) snapshot.processingTimers = processing;
    return snapshot;
  }

  override restore(snapshot: JsonValue, merge = false): void {
    const s = snapshot as unknown as {
      watermark: JsonValue;
      states: Record<string, JsonValue>;
      timers: [string, number][];
      keyedStates?: Record<string, KeyedStateJson>;
      processingTimers?: [string, number][];
    };
    this.watermark = restoredTime(this.watermark, s.watermark, merge);
    this.store.restore(s.states, s.keyedStates, merge);
    if (!merge) {
      this.eventTimers.clear();
      this.processingTimers.clear();
    }
    for (const [key, time] of s.timers) this.eventTimers.register(key, time);
    for (const [key, time] of s.processingTimers ?? []) this.processingTimers.register(key, time);
  }
}
