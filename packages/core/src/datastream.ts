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
  union(...others: DataStream<T>[]): DataStream<T>;
  process<U>(fn: ProcessFunction<T, U>): DataStream<U>;
  /** Records a process function emitted with `ctx.output(tag, value)`. */
  getSideOutput<U>(tag: OutputTag<U>): DataStream<U>;
  assignTimestampsAndWatermarks(strategy: WatermarkStrategy<T>): DataStream<T>;
  /** Check each value against a message type at run time; failures go to the dead-letter topic. */
  validate(type: MessageType<T>): DataStream<T>;
}

export interface Collector<T> {
  collect(value: T, timestamp?: number): void;
}

export interface KeyedStream<T> {
  reduce(fn: (accumulator: T, value: T) => T): DataStream<T>;
  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  process<U>(fn: KeyedProcessFunction<T, U>): DataStream<U>;
  window(assigner: WindowAssigner): WindowedStream<T>;
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
  update(value: S): void;
  clear(): void;
}

export interface TimerService {
  currentWatermark(): number;
  registerEventTimeTimer(timestamp: number): void;
  deleteEventTimeTimer(timestamp: number): void;
}

export interface KeyedProcessContext<T> extends ProcessContext<T> {
  readonly key: string;
  state<S>(name: string): ValueState<S>;
  readonly timerService: TimerService;
}

export interface OnTimerContext {
  readonly key: string;
  readonly timestamp: number;
  state<S>(name: string): ValueState<S>;
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

export type WindowAssigner =
  | { type: 'tumbling'; sizeMs: number; offsetMs?: number }
  | { type: 'sliding'; sizeMs: number; slideMs: number }
  | { type: 'session'; gapMs: number }
  | { type: 'global' };

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
  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  process<U>(
    fn: (key: string, window: TimeWindow, values: readonly T[], out: Collector<U>) => void,
  ): DataStream<U>;
}
