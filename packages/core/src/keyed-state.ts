import type {
  AggregateFunction,
  Collector,
  KeyedProcessContext,
  KeyedProcessFunction,
  OnTimerContext,
  OutputTag,
  TimerService,
  ValueState,
} from './datastream.js';
import {
  decodeTime,
  encodeTime,
  FAILED,
  type FailureHandler,
  Operator,
  ScratchRecord,
} from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { KeySelector } from './stream-graph.js';
import { freshCopy } from './operator-specialization.js';
import { TimerQueue } from './timer-queue.js';

/*
 * Keyed operators: state is a Map from key to value, one per operator (all of a stage's
 * operators run on one thread, so no locking). Checkpoints write the maps out as
 * [key, value] pairs, so state values must be JSON values.
 */

function entries(map: Map<string, unknown>): JsonValue {
  return [...map].map(([k, v]) => [k, v as JsonValue]);
}

function fillMap(map: Map<string, unknown>, pairs: JsonValue | undefined): void {
  map.clear();
  for (const pair of (pairs ?? []) as [string, JsonValue][]) map.set(pair[0], pair[1]);
}

/** Applies the key selector, dead-lettering the record if it throws. */
function selectKey(
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
  // Plain-JS key selectors may return numbers: keys are strings everywhere downstream.
  return typeof key === 'string' || key === FAILED ? key : String(key);
}

/** keyed reduce's push, self-contained for freshCopy (uses only its parameters). */
function keyedReducePush(
  op: Operator,
  keySelector: KeySelector,
  fn: (accumulator: unknown, value: unknown) => unknown,
  state: Map<string, unknown>,
  failures: FailureHandler,
  failed: typeof FAILED,
  out: ScratchRecord,
): (r: StreamRecord) => void {
  return function keyedReducePush(r: StreamRecord): void {
    let key: string | typeof failed;
    try {
      key = keySelector(r.value);
    } catch (error) {
      key = failures.recover(error, () => keySelector(r.value), `keyBy of ${op.name}`, r);
      if (key === failed) return;
    }
    if (typeof key !== 'string') key = String(key); // plain-JS selectors may return numbers
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
    out.key = key;
    out.value = next;
    out.timestamp = r.timestamp;
    out.headers = r.headers;
    op.next.push(out);
  };
}

/** keyBy().reduce(): emits the running reduction of the record's key, per record (as Flink). */
export class KeyedReduceOperator extends Operator {
  private readonly state = new Map<string, unknown>();

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly fn: (accumulator: unknown, value: unknown) => unknown,
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
    );
  }

  override specialize(): void {
    this.specializeWith(freshCopy(keyedReducePush));
  }

  override snapshot(): JsonValue {
    return { state: entries(this.state) };
  }

  override restore(state: JsonValue): void {
    fillMap(this.state, (state as { state: JsonValue }).state);
  }
}

/** keyBy().aggregate(): emits getResult of the key's running accumulator, per record. */
export class KeyedAggregateOperator extends Operator {
  private readonly state = new Map<string, unknown>();

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly fn: AggregateFunction<unknown, unknown, unknown>,
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
    return result;
  }

  override snapshot(): JsonValue {
    return { state: entries(this.state) };
  }

  override restore(state: JsonValue): void {
    fillMap(this.state, (state as { state: JsonValue }).state);
  }
}

interface KeyedTimer {
  time: number;
  key: string;
}

/** ValueState of one name, scoped to the operator's current key. */
class KeyedValueState implements ValueState<unknown> {
  readonly values = new Map<string, unknown>();
  constructor(private readonly op: KeyedProcessOperator) {}
  value(): unknown {
    return this.values.get(this.op.currentKey);
  }
  update(value: unknown): void {
    if (value === undefined) this.values.delete(this.op.currentKey);
    else this.values.set(this.op.currentKey, value);
  }
  clear(): void {
    this.values.delete(this.op.currentKey);
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

  constructor(
    private readonly op: KeyedProcessOperator,
    readonly timerService: TimerService,
  ) {}

  get currentWatermark(): number {
    return this.op.watermark;
  }
  state<S>(name: string): ValueState<S> {
    return this.op.state(name) as ValueState<S>;
  }
  output<U>(tag: OutputTag<U>, value: U): void {
    this.op.side(tag.id, value, this.key, this.timestamp, this.record.headers);
  }
  collect(value: unknown, timestamp?: number): void {
    this.op.forward(value, this.key, timestamp ?? this.timestamp, this.record.headers);
  }
}

/** keyBy().process(): keyed ValueState and event-time timers (Flink's KeyedProcessFunction). */
export class KeyedProcessOperator extends Operator {
  currentKey = '';
  private readonly states = new Map<string, KeyedValueState>();
  private readonly timers = new TimerQueue<KeyedTimer>();
  /** key -> registered timer times; the heap may hold stale entries (deleted timers). */
  private readonly registered = new Map<string, Set<number>>();
  private readonly ctx: KeyedContext;

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly fn: KeyedProcessFunction<unknown, unknown>,
  ) {
    super(failures, name);
    this.ctx = new KeyedContext(this, {
      currentWatermark: () => this.watermark,
      registerEventTimeTimer: (t) => this.registerTimer(this.currentKey, t),
      deleteEventTimeTimer: (t) => this.deleteTimer(this.currentKey, t),
    });
  }

  state(name: string): KeyedValueState {
    let state = this.states.get(name);
    if (state === undefined) {
      state = new KeyedValueState(this);
      this.states.set(name, state);
    }
    return state;
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

  registerTimer(key: string, time: number): void {
    let times = this.registered.get(key);
    if (times === undefined) {
      times = new Set();
      this.registered.set(key, times);
    }
    if (times.has(time)) return;
    times.add(time);
    this.timers.push({ time, key });
  }

  deleteTimer(key: string, time: number): void {
    const times = this.registered.get(key);
    if (times === undefined) return;
    times.delete(time);
    if (times.size === 0) this.registered.delete(key);
  }

  protected override receive(r: StreamRecord): void {
    const key = selectKey(this, this.failures, this.keySelector, r);
    if (key === FAILED) return;
    const ctx = this.ctx;
    this.currentKey = key;
    ctx.key = key;
    ctx.record = r;
    ctx.timestamp = r.timestamp;
    try {
      this.fn.processElement(r.value, ctx, ctx);
    } catch (error) {
      this.failures.recover(error, () => this.fn.processElement(r.value, ctx, ctx), this.name, r);
    }
  }

  protected override onWatermark(watermark: number): void {
    const onTimer = this.fn.onTimer;
    const timers = this.timers;
    const ctx = this.ctx;
    for (let top = timers.peek(); top !== undefined && top.time <= watermark; top = timers.peek()) {
      timers.pop();
      const times = this.registered.get(top.key);
      if (times === undefined || !times.has(top.time)) continue; // deleted or already fired
      this.deleteTimer(top.key, top.time);
      if (onTimer === undefined) continue;
      this.currentKey = top.key;
      ctx.key = top.key;
      ctx.timestamp = top.time;
      ctx.record = { key: top.key, value: null, timestamp: top.time };
      const time = top.time;
      try {
        onTimer.call(this.fn, time, ctx, ctx);
      } catch (error) {
        this.failures.recover(
          error,
          () => onTimer.call(this.fn, time, ctx, ctx),
          `onTimer of ${this.name}`,
          {
            key: top.key,
            value: { timer: time },
            timestamp: time,
          },
        );
      }
    }
  }

  override snapshot(): JsonValue {
    const states: Record<string, JsonValue> = {};
    for (const [name, state] of this.states) states[name] = entries(state.values);
    const timers: JsonValue[] = [];
    for (const [key, times] of this.registered) for (const t of times) timers.push([key, t]);
    return { watermark: encodeTime(this.watermark), states, timers };
  }

  override restore(snapshot: JsonValue): void {
    const s = snapshot as {
      watermark: JsonValue;
      states: Record<string, JsonValue>;
      timers: [string, number][];
    };
    this.watermark = decodeTime(s.watermark);
    for (const [name, pairs] of Object.entries(s.states)) fillMap(this.state(name).values, pairs);
    for (const [key, time] of s.timers) this.registerTimer(key, time);
  }
}
