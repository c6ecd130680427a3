import type {
  BroadcastConnectedStream,
  BroadcastStream,
  KeyedBroadcastConnectedStream,
} from './broadcast-state.js';
import type { ConnectedStreams, JoinedStreams } from './connected-streams.js';
import type { IntervalJoin } from './interval-join.js';
import type { MessageType } from './message-type.js';
import type { StreamRecord } from './record.js';

/**
 * The DataStream API inside one stage (Flink's names and semantics). Calls only describe
 * the operator graph; the runtime fuses chained operators into synchronous loops over a
 * batch, so user functions are plain synchronous functions: no promise per record.
 * A function that throws sends that record (after retries) to the stage's dead-letter
 * topic; the rest of the batch flows on.
 */
export interface DataStream<T> {
  map<U>(fn: (value: T, record: StreamRecord<T>) => U): DataStream<U>;
  filter<S extends T>(fn: (value: T, record: StreamRecord<T>) => value is S): DataStream<S>;
  filter(fn: (value: T, record: StreamRecord<T>) => boolean): DataStream<T>;
  /** Emit zero or more values per input through `out`. */
  flatMap<U>(fn: (value: T, out: Collector<U>, record: StreamRecord<T>) => void): DataStream<U>;
  keyBy(fn: (value: T) => string): KeyedStream<T>;
  /**
   * A non-keyed window (Flink's windowAll): every record of the stream in one window per
   * pane. Results carry no key.
   */
  windowAll(assigner: WindowAssigner): AllWindowedStream<T>;
  union(...others: DataStream<T>[]): DataStream<T>;
  process<U>(fn: ProcessFunction<T, U>): DataStream<U>;
  /** Records a process function emitted with `ctx.output(tag, value)`. */
  getSideOutput<U>(tag: OutputTag<U>): DataStream<U>;
  assignTimestampsAndWatermarks(strategy: WatermarkStrategy<T>): DataStream<T>;
  /** Check each value against a message type at run time; failures go to the dead-letter topic. */
  validate(type: MessageType<T>): DataStream<T>;
  /**
   * Two streams (of any types) into one function: `process` with a CoProcessFunction, or
   * `keyBy(keyA, keyB).process` with a KeyedCoProcessFunction sharing state and timers per key.
   */
  connect<U>(other: DataStream<U>): ConnectedStreams<T, U>;
  /**
   * With a broadcast stream: `process` with a BroadcastProcessFunction, whose elements read the
   * broadcast state the broadcast elements write (Flink's broadcast state pattern).
   */
  connect<U>(other: BroadcastStream<U>): BroadcastConnectedStream<T, U>;
  /**
   * This stream, read whole by every worker of the stage, for `connect()` (Flink's
   * `broadcast()`). Only for a stage input, or a stream made from inputs by stateless
   * operators (map, filter, flatMap, process, union, watermarks, validate) that feeds nothing
   * else: every worker reads those inputs from their beginning (see broadcast-state.ts).
   */
  broadcast(): BroadcastStream<T>;
  /** Window join with another stream of this transform (Flink's `join().where().equalTo().window().apply()`). */
  join<U>(other: DataStream<U>): JoinedStreams<T, U>;
}

export interface Collector<T> {
  collect(value: T, timestamp?: number): void;
}

export interface KeyedStream<T> {
  reduce(fn: (accumulator: T, value: T) => T): DataStream<T>;
  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  process<U>(fn: KeyedProcessFunction<T, U>): DataStream<U>;
  window(assigner: WindowAssigner): WindowedStream<T>;
  /** Event-time interval join with another keyed stream of this transform (Flink's intervalJoin). */
  intervalJoin<U>(other: KeyedStream<U>): IntervalJoin<T, U>;
  /** With a broadcast stream: a KeyedBroadcastProcessFunction (keyed state and timers per key). */
  connect<U>(other: BroadcastStream<U>): KeyedBroadcastConnectedStream<T, U>;
}

export interface AggregateFunction<T, A, R> {
  createAccumulator(): A;
  add(value: T, accumulator: A): A;
  getResult(accumulator: A): R;
  merge?(a: A, b: A): A;
}

/** A typed tag for a side output. */
export interface OutputTag<T> {
  readonly id: string;
  /** Phantom field carrying the element type; never set. */
  readonly __type?: T;
}

export interface ProcessContext<T> {
  readonly record: StreamRecord<T>;
  readonly timestamp: number;
  readonly currentWatermark: number;
  output<U>(tag: OutputTag<U>, value: U): void;
}

export interface ProcessFunction<T, U> {
  processElement(value: T, ctx: ProcessContext<T>, out: Collector<U>): void;
}

/** Keyed state scoped to the current key; snapshotted with the stage's checkpoint. */
export interface ValueState<S> {
  value(): S | undefined;
  /** `update(undefined)` clears. */
  update(value: S): void;
  clear(): void;
}

/** A list per key (Flink's ListState). With TTL, each element expires on its own. */
export interface ListState<T> {
  /** The elements, oldest first: a fresh array (empty when there are none). */
  get(): T[];
  add(value: T): void;
  addAll(values: readonly T[]): void;
  /** Replaces the elements; an empty array clears. */
  update(values: readonly T[]): void;
  clear(): void;
}

/** A map per key with string keys (Flink's MapState). With TTL, each entry expires on its own. */
export interface MapState<K extends string, V> {
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  putAll(entries: Readonly<Partial<Record<K, V>>> | ReadonlyMap<K, V>): void;
  remove(key: K): void;
  /** A read: with TTL `OnReadAndWrite` it renews the entry. */
  contains(key: K): boolean;
  /** Fresh arrays, in insertion order. */
  entries(): [K, V][];
  keys(): K[];
  values(): V[];
  isEmpty(): boolean;
  clear(): void;
}

/** One value per key folded with the reduce function given at declaration (Flink's ReducingState). */
export interface ReducingState<T> {
  get(): T | undefined;
  add(value: T): void;
  clear(): void;
}

/** One accumulator per key of an AggregateFunction (Flink's AggregatingState). */
export interface AggregatingState<IN, OUT> {
  /** `getResult` of the key's accumulator; undefined when nothing was added. */
  get(): OUT | undefined;
  add(value: IN): void;
  clear(): void;
}

/**
 * State time-to-live (Flink's StateTtlConfig), on processing time (`RunOptions.clock`). An
 * entry written (or, with `OnReadAndWrite`, read) at `t` expires at `t + ttlMs`: it is then
 * invisible (`NeverReturnExpired`, the default) or returned once more if no cleanup has
 * removed it yet (`ReturnExpiredIfNotCleanedUp`). Expired entries are removed when accessed
 * and at every checkpoint, so checkpoints never hold them.
 */
export interface StateTtlConfig {
  ttlMs: number;
  /** What renews an entry's time to live; default `OnCreateAndWrite`. */
  updateType?: 'OnCreateAndWrite' | 'OnReadAndWrite';
  /** Default `NeverReturnExpired`. */
  visibility?: 'NeverReturnExpired' | 'ReturnExpiredIfNotCleanedUp';
}

/** How a state is declared, the first time a name is used in an operator (Flink's state descriptor). */
export interface StateOptions {
  ttl?: StateTtlConfig;
}

/**
 * Keyed state by name, scoped to the current key (Flink's `getRuntimeContext().getState(...)`).
 * A name holds one kind of state; its options count from its first use in the operator.
 */
export interface KeyedStateAccess {
  state<S>(name: string, options?: StateOptions): ValueState<S>;
  listState<T>(name: string, options?: StateOptions): ListState<T>;
  mapState<K extends string, V>(name: string, options?: StateOptions): MapState<K, V>;
  reducingState<T>(
    name: string,
    reduce: (accumulator: T, value: T) => T,
    options?: StateOptions,
  ): ReducingState<T>;
  aggregatingState<IN, ACC, OUT>(
    name: string,
    fn: AggregateFunction<IN, ACC, OUT>,
    options?: StateOptions,
  ): AggregatingState<IN, OUT>;
}

export interface TimerService {
  currentWatermark(): number;
  registerEventTimeTimer(timestamp: number): void;
  deleteEventTimeTimer(timestamp: number): void;
  /** Processing time now (epoch ms, `RunOptions.clock`). */
  currentProcessingTime(): number;
  /** Fires `onTimer` once the run's clock reaches `timestamp` (checked on each tick). */
  registerProcessingTimeTimer(timestamp: number): void;
  deleteProcessingTimeTimer(timestamp: number): void;
}

/** Which clock fired a timer (Flink's TimeDomain). */
export type TimeDomain = 'event' | 'processing';

export interface KeyedProcessContext<T> extends ProcessContext<T>, KeyedStateAccess {
  readonly key: string;
  readonly timerService: TimerService;
}

export interface OnTimerContext extends KeyedStateAccess {
  readonly key: string;
  /** The timer's time (what `out.collect` emits with). */
  readonly timestamp: number;
  /** Whether an event-time or a processing-time timer fired. */
  timeDomain(): TimeDomain;
  readonly timerService: TimerService;
  output<U>(tag: OutputTag<U>, value: U): void;
}

export interface KeyedProcessFunction<T, U> {
  processElement(value: T, ctx: KeyedProcessContext<T>, out: Collector<U>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext, out: Collector<U>): void;
}

export interface WatermarkStrategy<T> {
  /** Event time of a value; default: the record's timestamp. */
  timestampAssigner?: (value: T, recordTimestamp: number) => number;
  /** Bounded out-of-orderness: watermark = max timestamp seen - this. */
  maxOutOfOrdernessMs: number;
  /** A partition/input with no records for this long stops holding the watermark back. */
  idleTimeoutMs?: number;
}

/**
 * `offsetMs` shifts window starts from multiples of the size (tumbling) or slide (sliding),
 * e.g. for days that start at local midnight; |offsetMs| must be below it (Flink's
 * `TumblingEventTimeWindows.of(size, offset)`, `SlidingEventTimeWindows.of(size, slide, offset)`).
 */
export type WindowAssigner =
  | { type: 'tumbling'; sizeMs: number; offsetMs?: number; time?: WindowTime }
  | { type: 'sliding'; sizeMs: number; slideMs: number; offsetMs?: number; time?: WindowTime }
  | { type: 'session'; gapMs: number }
  | { type: 'global' };

/**
 * What a window's time is (Flink's TumblingEventTimeWindows vs TumblingProcessingTimeWindows):
 * `event` (default) the record timestamps and watermarks; `processing` the run's clock when an
 * element arrives, windows firing on the run's ticks (never late; none fire at end of input).
 */
export type WindowTime = 'event' | 'processing';

export interface TimeWindow {
  start: number;
  end: number;
}

export interface WindowedStream<T> {
  /** Fire on every `count` elements instead of at the window's end (count trigger). */
  countTrigger(count: number): WindowedStream<T>;
  /** Keep windows open this long past the watermark; later records go to `sideOutputLateData`. */
  allowedLateness(ms: number): WindowedStream<T>;
  sideOutputLateData(tag: OutputTag<T>): WindowedStream<T>;
  reduce(fn: (accumulator: T, value: T) => T): DataStream<T>;
  /**
   * Reduces incrementally (one value per window held, not every element) and hands the
   * window's result to `windowFunction` with its key and bounds when it fires (Flink's
   * `reduce(reduceFunction, ProcessWindowFunction)`).
   */
  reduce<U>(
    fn: (accumulator: T, value: T) => T,
    windowFunction: (key: string, window: TimeWindow, result: T, out: Collector<U>) => void,
  ): DataStream<U>;
  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  /** Aggregates incrementally; `windowFunction` gets `getResult`'s value, the key and the window. */
  aggregate<A, R, U>(
    fn: AggregateFunction<T, A, R>,
    windowFunction: (key: string, window: TimeWindow, result: R, out: Collector<U>) => void,
  ): DataStream<U>;
  process<U>(
    fn: (key: string, window: TimeWindow, values: readonly T[], out: Collector<U>) => void,
  ): DataStream<U>;
}

/** `windowAll()`: a WindowedStream without keys (Flink's AllWindowedStream). */
export interface AllWindowedStream<T> {
  countTrigger(count: number): AllWindowedStream<T>;
  allowedLateness(ms: number): AllWindowedStream<T>;
  sideOutputLateData(tag: OutputTag<T>): AllWindowedStream<T>;
  reduce(fn: (accumulator: T, value: T) => T): DataStream<T>;
  reduce<U>(
    fn: (accumulator: T, value: T) => T,
    windowFunction: (window: TimeWindow, result: T, out: Collector<U>) => void,
  ): DataStream<U>;
  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  aggregate<A, R, U>(
    fn: AggregateFunction<T, A, R>,
    windowFunction: (window: TimeWindow, result: R, out: Collector<U>) => void,
  ): DataStream<U>;
  process<U>(
    fn: (window: TimeWindow, values: readonly T[], out: Collector<U>) => void,
  ): DataStream<U>;
}
