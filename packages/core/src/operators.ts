import type { Collector, OutputTag, ProcessContext, ProcessFunction } from './datastream.js';
import { CodefeedrError } from './errors.js';
import type { MessageType } from './message-type.js';
import type { DeadLetterSink } from './operator-chain.js';
import { freshCopy } from './operator-specialization.js';
import type { JsonValue, StreamRecord } from './record.js';
import { sourceRecordError } from './source-record-error.js';

/*
 * Fused operators (Flink's operator chaining): each operator pushes one record at a time
 * straight into the next one, synchronously. Nothing here allocates per record except
 * what user functions return: every operator writes its output into one ScratchRecord it
 * owns and reuses (Flink's object reuse). A receiver must copy a record it keeps; the
 * chain's OutputCollector copies scratch records into the batch it returns.
 */

/** What every operator (and chain end) receives. */
export interface Downstream {
  push(record: StreamRecord): void;
  /** Event time has reached `watermark`: no record with timestamp <= watermark is expected. */
  advanceWatermark(watermark: number): void;
  /** The stream upstream is idle (no watermarks for now) or active again (Flink's WatermarkStatus). */
  markIdle(idle: boolean): void;
}

/** The reusable output record of one operator. Valid only during the downstream call. */
export class ScratchRecord implements StreamRecord {
  key: string | undefined = undefined;
  value: unknown = undefined;
  timestamp = 0;
  headers: Record<string, string> | undefined = undefined;
}

/** A user function threw on a record `retries + 1` times; the record went to dead letters. */
export class UserFunctionError extends CodefeedrError {
  constructor(stageId: string, operator: string, attempts: number, cause: unknown) {
    super(
      'USER_FUNCTION_FAILED',
      `${operator} in stage "${stageId}" threw ${attempts} time(s): ${errorMessage(cause)}. The input record went to the dead-letter topic; fix the function or the data, then replay it.`,
      { stageId, operator, attempts },
      { cause },
    );
  }
}

/** What a non-string key is, for messages: `null`, `an array`, `a number (1)`. */
export function describeKey(key: unknown): string {
  if (key === null) return 'null';
  if (key === undefined) return 'undefined';
  if (Array.isArray(key)) return 'an array';
  const type = typeof key;
  const article = type === 'object' || type === 'undefined' ? 'an' : 'a';
  const shown =
    type === 'number' || type === 'boolean' || type === 'bigint' ? ` (${String(key)})` : '';
  return `${article} ${type}${shown}`;
}

/**
 * A key selector returned something that is not a string. Keys are strings in state,
 * checkpoints and buffer partitioning; stringifying other values would let different keys
 * share state silently (1 and "1"; every object as "[object Object]"), so the stage fails
 * at the first such record instead (DATAFLOW.md, "Keys").
 */
export class KeyTypeError extends CodefeedrError {
  constructor(stageId: string, operator: string, key: unknown) {
    const what = describeKey(key);
    super(
      'KEY_NOT_STRING',
      `keyBy of ${operator} in stage "${stageId}" returned ${what}, not a string. Keys must be strings: other values would collide when stringified (1 and "1", objects as "[object Object]"). Return a string from the key selector, e.g. String(n) when every key is a number, or JSON.stringify([a, b]) for a compound key.`,
      {
        stageId,
        operator,
        keyType: key === null ? 'null' : Array.isArray(key) ? 'array' : typeof key,
      },
    );
  }
}

/**
 * A record reached a buffer with a key that is not a string (a source or user code set it):
 * buffers partition by string keys, and stringifying would make 1 and "1" one key. The
 * record is a dead letter of the stage that emitted it; a null key counts as none.
 */
export class RecordKeyError extends CodefeedrError {
  constructor(stageId: string, key: unknown) {
    super(
      'RECORD_KEY_INVALID',
      `Stage "${stageId}" emitted a record whose key is ${describeKey(key)}, not a string: buffers partition records by string keys. Give its records string keys (String(n), JSON.stringify([a, b])) or none.`,
      { stageId, keyType: Array.isArray(key) ? 'array' : typeof key },
    );
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Returned by FailureHandler.recover when every attempt failed. */
export const FAILED: unique symbol = Symbol('codefeedr.failed');

/**
 * Shared by every operator of one chain: which stage input record is being processed
 * (what goes to dead letters), and the retry policy. Operators catch around the user call
 * only; try/catch costs nothing in V8 until something throws, and catching there (rather
 * than at the batch loop) lets a flatMap's other outputs and fan-out siblings carry on.
 */
export class FailureHandler {
  inputIndex = -1;
  /** The batch being processed and the position in it (a number: no write barrier per record). */
  batch: readonly StreamRecord[] | undefined = undefined;
  position = 0;

  /** The stage input record being processed, if inside processBatch. */
  get inputRecord(): StreamRecord | undefined {
    return this.batch?.[this.position];
  }

  constructor(
    readonly stageId: string,
    private readonly deadLetter: DeadLetterSink,
    private readonly retries: number,
  ) {}

  /** Retries `call` up to `retries` times; then dead-letters and returns FAILED. */
  recover<R>(
    firstError: unknown,
    call: () => R,
    operator: string,
    fallback?: StreamRecord,
  ): R | typeof FAILED {
    // A non-string key fails the stage: caught by an upstream user call (a flatMap's
    // collect), it would otherwise be retried and dead-lettered as that function's failure.
    if (firstError instanceof KeyTypeError) throw firstError;
    let error = firstError;
    let attempts = 1;
    while (attempts <= this.retries) {
      attempts++;
      try {
        return call();
      } catch (next) {
        error = next;
      }
    }
    this.fail(new UserFunctionError(this.stageId, operator, attempts, error), attempts, fallback);
    return FAILED;
  }

  /** A record its source flagged as unparseable (source-record-error.ts) goes straight to dead letters. */
  failBadSourceRecord(record: StreamRecord): void {
    this.fail(sourceRecordError(record), 1, record);
  }

  /**
   * Dead-letters the stage input record being processed; outside processBatch (timers and
   * windows firing) there is none, so `fallback` describes what failed, with input index -1.
   */
  fail(error: unknown, attempts: number, fallback?: StreamRecord): void {
    const input = this.inputRecord;
    const record = input ?? fallback;
    const inputIndex = input ? this.inputIndex : -1;
    this.deadLetter(
      record ? copyRecord(record) : { value: null, timestamp: 0 },
      error,
      attempts,
      inputIndex,
    );
  }
}

export function copyRecord(r: StreamRecord): StreamRecord {
  return { key: r.key, value: r.value, timestamp: r.timestamp, headers: r.headers };
}

const NO_DOWNSTREAM: Downstream = { push() {}, advanceWatermark() {}, markIdle() {} };

/** Base of every operator: forwards watermarks (after onWatermark) to main and side outputs. */
export abstract class Operator implements Downstream {
  /** Hot operators replace this with a closure specialised for them (operator-specialization.ts). */
  push: (record: StreamRecord) => void = (record) => this.receive(record);
  next: Downstream = NO_DOWNSTREAM;
  /** Side-output tag id -> where `ctx.output(tag, ...)` records go. */
  sideOutputs = new Map<string, Downstream>();
  watermark = -Infinity;
  /**
   * Keys whose state this operator may have changed since the chain last took them, when the
   * chain tracks them (incremental checkpoints: OperatorChain.trackChangedKeys); shared by
   * every operator of the chain.
   */
  changedKeys: Set<string> | undefined = undefined;
  protected readonly out = new ScratchRecord();
  private readonly sideOut = new ScratchRecord();

  constructor(
    protected readonly failures: FailureHandler,
    readonly name: string,
  ) {}

  protected receive(_record: StreamRecord): void {}

  /** Called once the chain is wired: hot operators build their specialised push here. */
  specialize(): void {}

  advanceWatermark(watermark: number): void {
    if (watermark <= this.watermark) return;
    this.watermark = watermark;
    this.onWatermark(watermark);
    this.next.advanceWatermark(watermark);
    for (const side of this.sideOutputs.values()) side.advanceWatermark(watermark);
  }

  /** Whether the stream through this operator is idle; only unions act on it. */
  idle = false;

  markIdle(idle: boolean): void {
    if (idle === this.idle) return;
    this.idle = idle;
    this.next.markIdle(idle);
    for (const side of this.sideOutputs.values()) side.markIdle(idle);
  }

  /** Fire what the watermark completes (timers, windows) before it moves downstream. */
  protected onWatermark(_watermark: number): void {}

  /**
   * After a shard was merged in: fires what the current watermark makes due. A restored
   * shard's timers may be at or below a watermark this operator already passed, and
   * advanceWatermark fires only when the watermark moves.
   */
  fireDue(): void {
    if (this.watermark > -Infinity) this.onWatermark(this.watermark);
  }

  /** Emits `value` with the given key/timestamp/headers through this operator's scratch record. */
  protected emit(
    value: unknown,
    key: string | undefined,
    timestamp: number,
    headers: Record<string, string> | undefined,
  ): void {
    const out = this.out;
    out.key = key;
    out.value = value;
    out.timestamp = timestamp;
    out.headers = headers;
    this.next.push(out);
  }

  /** Sends to a side output; a tag nobody consumes drops the value, as in Flink. */
  protected emitSide(
    tagId: string,
    value: unknown,
    key: string | undefined,
    timestamp: number,
    headers?: Record<string, string>,
  ): void {
    const side = this.sideOutputs.get(tagId);
    if (side === undefined) return;
    const out = this.sideOut;
    out.key = key;
    out.value = value;
    out.timestamp = timestamp;
    out.headers = headers;
    side.push(out);
  }

  /**
   * State for checkpoints; stateless operators have none. With a filter, only the keys and
   * channels it keeps (one state shard); what belongs to no key (watermarks) is always taken.
   */
  snapshot(_filter?: StateFilter): JsonValue | undefined {
    return undefined;
  }

  /**
   * Replaces the state with a snapshot's or, with `merge`, adds a shard's to what is held
   * (its keys are not held here; watermarks take the later of the two).
   */
  restore(_state: JsonValue, _merge = false): void {}
}

/* eslint-disable @typescript-eslint/no-explicit-any -- operators carry functions of any element type */
type AnyFn = (...args: any[]) => any;
/* eslint-enable @typescript-eslint/no-explicit-any */

/** map's push, self-contained for freshCopy (uses only its parameters). */
function mapPush(
  op: Operator,
  fn: AnyFn,
  failures: FailureHandler,
  failed: typeof FAILED,
  out: ScratchRecord,
): (r: StreamRecord) => void {
  return function mapPush(r: StreamRecord): void {
    let value: unknown;
    try {
      value = fn(r.value, r);
    } catch (error) {
      value = failures.recover(error, () => fn(r.value, r), op.name, r);
      if (value === failed) return;
    }
    out.key = r.key;
    out.value = value;
    out.timestamp = r.timestamp;
    out.headers = r.headers;
    op.next.push(out);
  };
}

export class MapOperator extends Operator {
  constructor(
    failures: FailureHandler,
    name: string,
    private readonly fn: AnyFn,
  ) {
    super(failures, name);
    this.specializeWith(mapPush);
  }

  private specializeWith(factory: typeof mapPush): void {
    this.push = factory(this, this.fn, this.failures, FAILED, this.out);
  }

  override specialize(): void {
    this.specializeWith(freshCopy(mapPush));
  }
}

/** filter's push, self-contained for freshCopy. */
function filterPush(
  op: Operator,
  fn: AnyFn,
  failures: FailureHandler,
  failed: typeof FAILED,
): (r: StreamRecord) => void {
  return function filterPush(r: StreamRecord): void {
    let keep: unknown;
    try {
      keep = fn(r.value, r);
    } catch (error) {
      keep = failures.recover(error, () => fn(r.value, r), op.name, r);
      if (keep === failed) return;
    }
    if (keep) op.next.push(r);
  };
}

export class FilterOperator extends Operator {
  constructor(
    failures: FailureHandler,
    name: string,
    private readonly fn: AnyFn,
  ) {
    super(failures, name);
    this.specializeWith(filterPush);
  }

  private specializeWith(factory: typeof filterPush): void {
    this.push = factory(this, this.fn, this.failures, FAILED);
  }

  override specialize(): void {
    this.specializeWith(freshCopy(filterPush));
  }
}

/**
 * flatMap's Collector. One per operator; `collect` emits with the current input's key,
 * headers and timestamp (unless given one).
 */
class ForwardingCollector implements Collector<unknown> {
  current: StreamRecord = new ScratchRecord();
  constructor(private readonly op: FlatMapOperator) {}
  collect(value: unknown, timestamp?: number): void {
    const c = this.current;
    this.op.forward(value, c.key, timestamp ?? c.timestamp, c.headers);
  }
}

export class FlatMapOperator extends Operator {
  private readonly collector = new ForwardingCollector(this);

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly fn: AnyFn,
  ) {
    super(failures, name);
  }

  forward(
    value: unknown,
    key: string | undefined,
    timestamp: number,
    headers: Record<string, string> | undefined,
  ): void {
    this.emit(value, key, timestamp, headers);
  }

  protected override receive(r: StreamRecord): void {
    const collector = this.collector;
    collector.current = r;
    try {
      this.fn(r.value, collector, r);
    } catch (error) {
      // Values collected before the throw have gone downstream already; a retry may repeat them.
      this.failures.recover(error, () => this.fn(r.value, collector, r), this.name, r);
    }
  }
}

/** ProcessFunction context: one object per operator, repointed at each record. */
class ProcessOperatorContext implements ProcessContext<unknown>, Collector<unknown> {
  record: StreamRecord = new ScratchRecord();
  constructor(private readonly op: ProcessOperator) {}
  get timestamp(): number {
    return this.record.timestamp;
  }
  get currentWatermark(): number {
    return this.op.watermark;
  }
  output<U>(tag: OutputTag<U>, value: U): void {
    this.op.side(tag.id, value, this.record);
  }
  collect(value: unknown, timestamp?: number): void {
    const r = this.record;
    this.op.forward(value, r.key, timestamp ?? r.timestamp, r.headers);
  }
}

export class ProcessOperator extends Operator {
  private readonly ctx = new ProcessOperatorContext(this);

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly fn: ProcessFunction<unknown, unknown>,
  ) {
    super(failures, name);
  }

  forward(
    value: unknown,
    key: string | undefined,
    timestamp: number,
    headers: Record<string, string> | undefined,
  ): void {
    this.emit(value, key, timestamp, headers);
  }

  side(tagId: string, value: unknown, r: StreamRecord): void {
    this.emitSide(tagId, value, r.key, r.timestamp, r.headers);
  }

  protected override receive(r: StreamRecord): void {
    const ctx = this.ctx;
    ctx.record = r;
    try {
      this.fn.processElement(r.value, ctx, ctx);
    } catch (error) {
      this.failures.recover(error, () => this.fn.processElement(r.value, ctx, ctx), this.name, r);
    }
  }
}

/** validate(type): a value that fails its schema goes to dead letters (no retry: it is deterministic). */
export class ValidateOperator extends Operator {
  constructor(
    failures: FailureHandler,
    name: string,
    private readonly type: MessageType,
  ) {
    super(failures, name);
  }

  protected override receive(r: StreamRecord): void {
    try {
      this.type.check(r.value);
    } catch (error) {
      this.failures.fail(error, 1, r);
      return;
    }
    // The original value flows on: validate checks, it does not strip or coerce.
    this.next.push(r);
  }
}

/** Passes records through; the node a side output or a stage input compiles to. */
export class ForwardOperator extends Operator {
  protected override receive(r: StreamRecord): void {
    this.next.push(r);
  }
}

/** fan-out's push, self-contained for freshCopy. */
function fanOutPush(targets: readonly Downstream[]): (r: StreamRecord) => void {
  return function fanOutPush(r: StreamRecord): void {
    for (let i = 0; i < targets.length; i++) targets[i]!.push(r);
  };
}

/** One stream consumed by several operators (fan-out inside a stage). */
export class FanOut implements Downstream {
  push: (r: StreamRecord) => void;
  constructor(private readonly targets: readonly Downstream[]) {
    // Fan-outs are built after the operators they feed are specialised: copy the loop now.
    this.push = freshCopy(fanOutPush)(targets);
  }
  advanceWatermark(watermark: number): void {
    for (const t of this.targets) t.advanceWatermark(watermark);
  }
  markIdle(idle: boolean): void {
    for (const t of this.targets) t.markIdle(idle);
  }
}

/**
 * union(): records pass straight through; the watermark is the minimum over its inputs
 * that are not idle (Flink's StatusWatermarkValve), so an idle input does not hold it back.
 */
export class UnionOperator extends Operator {
  private readonly inputWatermarks: number[];
  private readonly inputIdle: boolean[];

  constructor(failures: FailureHandler, name: string, inputs: number) {
    super(failures, name);
    this.inputWatermarks = new Array<number>(inputs).fill(-Infinity);
    this.inputIdle = new Array<boolean>(inputs).fill(false);
  }

  protected override receive(r: StreamRecord): void {
    this.next.push(r);
  }

  /** The Downstream the parent in slot `slot` pushes into. */
  input(slot: number): Downstream {
    return {
      push: (r) => this.next.push(r),
      advanceWatermark: (watermark) => {
        if (watermark > this.inputWatermarks[slot]!) this.inputWatermarks[slot] = watermark;
        this.update();
      },
      markIdle: (idle) => {
        this.inputIdle[slot] = idle;
        this.update();
      },
    };
  }

  private update(): void {
    let min = Infinity;
    let active = 0;
    for (let i = 0; i < this.inputWatermarks.length; i++) {
      if (this.inputIdle[i]) continue;
      active++;
      if (this.inputWatermarks[i]! < min) min = this.inputWatermarks[i]!;
    }
    if (active === 0) {
      super.markIdle(true);
      return;
    }
    super.markIdle(false);
    this.advanceWatermark(min);
  }

  override snapshot(): JsonValue {
    return {
      watermark: encodeTime(this.watermark),
      inputs: this.inputWatermarks.map(encodeTime),
      idle: this.inputIdle,
    };
  }

  override restore(state: JsonValue, merge = false): void {
    const s = state as { watermark: JsonValue; inputs: JsonValue[]; idle?: boolean[] };
    this.watermark = restoredTime(this.watermark, s.watermark, merge);
    s.inputs.forEach(
      (w, i) => (this.inputWatermarks[i] = restoredTime(this.inputWatermarks[i]!, w, merge)),
    );
    if (!merge) s.idle?.forEach((idle, i) => (this.inputIdle[i] = idle));
  }
}

/** The chain end's push, self-contained for freshCopy. */
function collectorPush(
  collector: OutputCollector,
  scratch: typeof ScratchRecord,
): (r: StreamRecord) => void {
  return function collectorPush(r: StreamRecord): void {
    // Scratch records are reused upstream: copy them; input records pass as they are.
    collector.batch.push(
      r instanceof scratch
        ? { key: r.key, value: r.value, timestamp: r.timestamp, headers: r.headers }
        : r,
    );
  };
}

/** The end of the chain: gathers what reaches the stage's output into the batch returned. */
export class OutputCollector implements Downstream {
  batch: StreamRecord[] = [];
  watermark = -Infinity;
  push = collectorPush(this, ScratchRecord);

  specialize(): void {
    this.push = freshCopy(collectorPush)(this, ScratchRecord);
  }

  advanceWatermark(watermark: number): void {
    if (watermark > this.watermark) this.watermark = watermark;
  }

  markIdle(): void {}

  take(): StreamRecord[] {
    const batch = this.batch;
    this.batch = [];
    return batch;
  }
}

/** Event times in checkpoints: JSON has no infinities, so they are written as strings. */
export function encodeTime(t: number): JsonValue {
  if (Number.isFinite(t)) return t;
  return t > 0 ? '+inf' : '-inf';
}

export function decodeTime(v: JsonValue | undefined): number {
  if (typeof v === 'number') return v;
  if (v === '+inf') return Infinity;
  return -Infinity;
}

/** A checkpointed time restored over `current`: replaced, or with `merge` the later of the two. */
export function restoredTime(
  current: number,
  saved: JsonValue | undefined,
  merge: boolean,
): number {
  const t = decodeTime(saved);
  return merge && current > t ? current : t;
}

/**
 * The part of a chain's state one snapshot takes (a state shard: the keys and channels of
 * some buffer partitions). Keyed operators ask `key` per key, channel-tracking ones
 * (watermark assigners) `channel` per channel.
 */
export interface StateFilter {
  key(key: string): boolean;
  channel(channel: string): boolean;
  /**
   * Whether broadcast state (broadcast-state.ts) is in: it belongs to no key or channel, so a
   * filtered snapshot (a partition's shard, a buffer worker's own checkpoint) leaves it out
   * unless this is true. A snapshot without a filter has everything.
   */
  broadcast?: boolean;
}
