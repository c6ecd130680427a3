import type { Collector, TimeWindow } from './datastream.js';
import {
  decodeTime,
  encodeTime,
  FAILED,
  type FailureHandler,
  Operator,
  restoredTime,
  type StateFilter,
} from './operators.js';
import { selectKey } from './keyed-operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import {
  DataflowGraphError,
  type KeySelector,
  type WindowFunction,
  type WindowSpec,
} from './stream-graph.js';
import { TimerQueue } from './timer-queue.js';

/*
 * keyBy().window(): Flink's WindowOperator semantics.
 * - A window [start, end) has maxTimestamp end - 1; the event-time trigger fires when the
 *   watermark reaches it. Results carry that timestamp (global windows: the newest element's).
 * - A window is late once maxTimestamp + allowedLateness <= watermark: its state is dropped
 *   then. An element added to no window goes to the late-data side output only if it is late
 *   itself (timestamp + allowedLateness <= watermark); otherwise (between sliding windows with
 *   size < slide) it is dropped. Within allowed lateness, each late element fires the window
 *   again with its new contents.
 * - countTrigger(n) fires and purges every n elements (Flink's countWindow); elements of an
 *   unfinished count are dropped when the window is cleaned up, as in Flink.
 * - Session windows merge when they touch or overlap (Flink's TimeWindow.intersects).
 * - Global windows fire at the end of input (Flink's GlobalWindows.createWithEndOfStreamTrigger).
 * - reduce/aggregate keep one accumulator per window (incremental); process keeps the values.
 * - `time: 'processing'` (tumbling, sliding: Flink's Tumbling/SlidingProcessingTimeWindows):
 *   elements go to the windows of the processing time they arrive at, windows fire and are
 *   dropped when processing time (the chain's ticks) passes end - 1; nothing is ever late,
 *   allowed lateness does not apply, watermarks and end of input fire nothing.
 */

interface WindowSlot {
  start: number;
  end: number;
  /** reduce: the reduced value; aggregate: the accumulator; process: the values. */
  acc: unknown;
  empty: boolean;
  count: number;
  /** Newest element timestamp: the result timestamp of global windows. */
  maxTimestamp: number;
  /** False once dropped or merged into another session: its timers are stale. */
  live: boolean;
  /** Time of the pending fire timer, if any (a session that grows moves it lazily). */
  fireTimerAt: number | undefined;
}

/**
 * One fire and one cleanup timer per window. Timers point at the window itself; a session
 * that grows does not push new timers: the old one, when due, re-arms at the new end.
 */
interface WindowTimer {
  time: number;
  key: string;
  slot: WindowSlot;
  /** false: fire the window; true: drop its state. Firing goes first at equal times. */
  cleanup: boolean;
}

function newSlot(start: number, end: number): WindowSlot {
  return {
    start,
    end,
    acc: undefined,
    empty: true,
    count: 0,
    maxTimestamp: -Infinity,
    live: true,
    fireTimerAt: undefined,
  };
}

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/** The Collector of process window functions: emits with the window's key and timestamp. */
class WindowCollector implements Collector<unknown> {
  key: string | undefined = '';
  timestamp = 0;
  constructor(private readonly op: WindowOperator) {}
  collect(value: unknown, timestamp?: number): void {
    this.op.forward(value, this.key, timestamp ?? this.timestamp);
  }
}

export class WindowOperator extends Operator {
  private readonly windows = new Map<string, Map<number, WindowSlot>>();
  private readonly timers = new TimerQueue<WindowTimer>(
    (a, b) => a.time < b.time || (a.time === b.time && !a.cleanup && b.cleanup),
  );
  private readonly lateness: number;
  private readonly collector = new WindowCollector(this);
  /** Windows on processing time: assigned by the clock, fired by ticks. */
  private readonly processingTime: boolean;

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly spec: WindowSpec,
    private readonly fn: WindowFunction,
    private readonly clock: () => number = Date.now,
  ) {
    super(failures, name);
    const time = (spec.assigner as { time?: unknown }).time;
    this.processingTime = time === 'processing';
    if (
      (time !== undefined && time !== 'event' && !this.processingTime) ||
      (this.processingTime && spec.assigner.type !== 'tumbling' && spec.assigner.type !== 'sliding')
    ) {
      throw new DataflowGraphError(
        `${name}: window time ${JSON.stringify(time)} on a ${spec.assigner.type} window: use time 'event' (the default) or 'processing' (tumbling and sliding windows).`,
      );
    }
    // Flink's cleanup time: lateness is an event-time notion.
    this.lateness = this.processingTime ? 0 : spec.allowedLatenessMs;
  }

  forward(value: unknown, key: string | undefined, timestamp: number): void {
    this.emit(value, key, timestamp, undefined);
  }

  protected override receive(r: StreamRecord): void {
    const key = selectKey(this, this.failures, this.keySelector, r);
    if (key === FAILED) return;
    this.changedKeys?.add(key);
    const ts = this.processingTime ? this.clock() : r.timestamp;
    const assigner = this.spec.assigner;
    let handled = false;
    switch (assigner.type) {
      case 'tumbling': {
        const start = ts - mod(ts - (assigner.offsetMs ?? 0), assigner.sizeMs);
        handled = this.addToWindow(key, start, start + assigner.sizeMs, r);
        break;
      }
      case 'sliding': {
        const { sizeMs, slideMs } = assigner;
        const last = ts - mod(ts - (assigner.offsetMs ?? 0), slideMs);
        for (let start = last; start > ts - sizeMs; start -= slideMs) {
          if (this.addToWindow(key, start, start + sizeMs, r)) handled = true;
        }
        break;
      }
      case 'session':
        handled = this.addToSession(key, r, assigner.gapMs);
        break;
      case 'global':
        handled = this.addToWindow(key, -Infinity, Infinity, r);
        break;
    }
    // In no window: late data only if the record itself is late (Flink's isElementLate); a
    // record that falls between sliding windows (size < slide) is dropped silently.
    if (!handled && this.spec.lateTag !== undefined && ts + this.lateness <= this.watermark) {
      this.emitSide(this.spec.lateTag, r.value, r.key, ts, r.headers);
    }
  }

  private isLate(end: number): boolean {
    if (this.processingTime) return false;
    return end !== Infinity && end - 1 + this.lateness <= this.watermark;
  }

  private slotsOf(key: string): Map<number, WindowSlot> {
    let slots = this.windows.get(key);
    if (slots === undefined) {
      slots = new Map();
      this.windows.set(key, slots);
    }
    return slots;
  }

  /** A new window: its cleanup timer, and its fire timer unless it is already due. */
  private registerTimers(key: string, slot: WindowSlot): void {
    this.armFireTimer(key, slot);
    this.timers.push({ time: slot.end - 1 + this.lateness, key, slot, cleanup: true });
  }

  private armFireTimer(key: string, slot: WindowSlot): void {
    const due = slot.end - 1;
    if (this.spec.countTrigger !== undefined || slot.fireTimerAt !== undefined) return;
    if (!this.processingTime && due <= this.watermark) return; // addValue fires it at once (a late firing)
    slot.fireTimerAt = due;
    this.timers.push({ time: due, key, slot, cleanup: false });
  }

  private addToWindow(key: string, start: number, end: number, r: StreamRecord): boolean {
    if (this.isLate(end)) return false;
    const slots = this.slotsOf(key);
    let slot = slots.get(start);
    if (slot === undefined) {
      slot = newSlot(start, end);
      slots.set(start, slot);
      this.registerTimers(key, slot);
    }
    this.addValue(key, slot, r);
    return true;
  }

  private addToSession(key: string, r: StreamRecord, gap: number): boolean {
    const ts = r.timestamp;
    let start = ts;
    let end = ts + gap;
    const slots = this.slotsOf(key);
    // Existing sessions never touch each other, so one pass finds every one to merge.
    // Usually none or one touches: no allocation then.
    let first: WindowSlot | undefined;
    let touching = 0;
    for (const slot of slots.values()) {
      if (slot.start <= ts + gap && slot.end >= ts) {
        touching++;
        if (first === undefined || slot.start < first.start) first = slot;
        if (slot.start < start) start = slot.start;
        if (slot.end > end) end = slot.end;
      }
    }
    if (this.isLate(end)) return false;
    let target: WindowSlot;
    if (first === undefined) {
      target = newSlot(start, end);
      slots.set(start, target);
      this.registerTimers(key, target);
    } else {
      if (touching > 1) {
        const others: WindowSlot[] = [];
        for (const slot of slots.values()) {
          if (slot !== first && slot.start <= ts + gap && slot.end >= ts) others.push(slot);
        }
        others.sort((a, b) => a.start - b.start);
        if (!this.mergeInto(first, others)) return true; // dead-lettered; sessions stay apart
        for (const other of others) {
          other.live = false;
          slots.delete(other.start);
        }
      }
      if (first.start !== start) {
        slots.delete(first.start);
        first.start = start;
        slots.set(start, first);
      }
      first.end = end;
      this.armFireTimer(key, first);
      target = first;
    }
    this.addValue(key, target, r);
    return true;
  }

  /** Folds later sessions' contents into `into`; false (nothing changed) if the user function threw. */
  private mergeInto(into: WindowSlot, others: readonly WindowSlot[]): boolean {
    const merge = (): WindowSlot => {
      const merged = { ...into };
      if (merged.empty === false && this.fn.type === 'process')
        merged.acc = [...(into.acc as unknown[])];
      for (const part of others) {
        merged.count += part.count;
        if (part.maxTimestamp > merged.maxTimestamp) merged.maxTimestamp = part.maxTimestamp;
        if (part.empty) continue;
        if (merged.empty) {
          merged.acc = this.fn.type === 'process' ? [...(part.acc as unknown[])] : part.acc;
          merged.empty = false;
        } else if (this.fn.type === 'reduce') {
          merged.acc = this.fn.fn(merged.acc, part.acc);
        } else if (this.fn.type === 'aggregate') {
          merged.acc = this.fn.fn.merge!(merged.acc, part.acc);
        } else {
          (merged.acc as unknown[]).push(...(part.acc as unknown[]));
        }
      }
      return merged;
    };
    let merged: WindowSlot | typeof FAILED;
    try {
      merged = merge();
    } catch (error) {
      merged = this.failures.recover(error, merge, `session merge of ${this.name}`);
    }
    if (merged === FAILED) return false;
    into.acc = merged.acc;
    into.empty = merged.empty;
    into.count = merged.count;
    into.maxTimestamp = merged.maxTimestamp;
    return true;
  }

  private addValue(key: string, slot: WindowSlot, r: StreamRecord): void {
    try {
      this.accumulate(slot, r.value);
    } catch (error) {
      if (
        this.failures.recover(error, () => this.accumulate(slot, r.value), this.name, r) === FAILED
      )
        return;
    }
    slot.count++;
    if (r.timestamp > slot.maxTimestamp) slot.maxTimestamp = r.timestamp;
    const count = this.spec.countTrigger;
    if (count !== undefined) {
      if (slot.count >= count) {
        this.fire(key, slot);
        slot.acc = undefined;
        slot.empty = true;
        slot.count = 0;
      }
    } else if (!this.processingTime && slot.end - 1 <= this.watermark) {
      this.fire(key, slot); // a late element within allowed lateness fires the window again
    }
  }

  /** Adds one value; leaves the slot unchanged if the user function throws. */
  private accumulate(slot: WindowSlot, value: unknown): void {
    const fn = this.fn;
    if (fn.type === 'reduce') {
      slot.acc = slot.empty ? value : fn.fn(slot.acc, value);
    } else if (fn.type === 'aggregate') {
      slot.acc = fn.fn.add(value, slot.empty ? fn.fn.createAccumulator() : slot.acc);
    } else if (slot.empty) {
      slot.acc = [value];
    } else {
      (slot.acc as unknown[]).push(value);
    }
    slot.empty = false;
  }

  private fire(key: string, slot: WindowSlot): void {
    if (slot.empty) return;
    const timestamp = slot.end === Infinity ? slot.maxTimestamp : slot.end - 1;
    const fn = this.fn;
    // windowAll results have no key (a constant one would pin them to one partition downstream).
    const outKey = this.spec.nonKeyed === true ? undefined : key;
    const run = (): void => {
      if (fn.type === 'process') {
        const window: TimeWindow = { start: slot.start, end: slot.end };
        this.collector.key = outKey;
        this.collector.timestamp = timestamp;
        fn.fn(key, window, slot.acc as unknown[], this.collector);
        return;
      }
      const result = fn.type === 'reduce' ? slot.acc : fn.fn.getResult(slot.acc);
      if (fn.window === undefined) {
        this.emit(result, outKey, timestamp, undefined);
        return;
      }
      this.collector.key = outKey;
      this.collector.timestamp = timestamp;
      fn.window(key, { start: slot.start, end: slot.end }, result, this.collector);
    };
    try {
      run();
    } catch (error) {
      this.failures.recover(error, run, this.name, {
        key: outKey,
        value: {
          window: { start: encodeTime(slot.start), end: encodeTime(slot.end) },
          contents: slot.acc,
        },
        timestamp,
      });
    }
  }

  protected override onWatermark(watermark: number): void {
    if (!this.processingTime) this.fireTimers(watermark);
  }

  /** Processing time reached `now` (a tick): processing-time windows due fire. */
  onProcessingTime(now: number): void {
    if (this.processingTime) this.fireTimers(now);
  }

  /** Fires and drops the windows whose timers are due at `watermark` (event or processing time). */
  private fireTimers(watermark: number): void {
    const timers = this.timers;
    for (let top = timers.peek(); top !== undefined && top.time <= watermark; top = timers.peek()) {
      timers.pop();
      const slot = top.slot;
      if (!slot.live) continue; // dropped, or merged into another session
      this.changedKeys?.add(top.key);
      if (!top.cleanup) {
        slot.fireTimerAt = undefined;
        // A session that grew past this watermark waits for its new end.
        if (slot.end - 1 > watermark) this.armFireTimer(top.key, slot);
        else this.fire(top.key, slot);
      } else if (slot.end - 1 + this.lateness > top.time) {
        this.timers.push({ ...top, time: slot.end - 1 + this.lateness });
      } else {
        slot.live = false;
        const slots = this.windows.get(top.key);
        slots?.delete(slot.start);
        if (slots?.size === 0) this.windows.delete(top.key);
      }
    }
  }

  override snapshot(filter?: StateFilter): JsonValue {
    const windows: JsonValue[] = [];
    for (const [key, slots] of this.windows) {
      if (filter !== undefined && !filter.key(key)) continue;
      const list: JsonValue[] = [];
      for (const s of slots.values()) {
        list.push([
          encodeTime(s.start),
          encodeTime(s.end),
          s.acc as JsonValue,
          s.empty,
          s.count,
          encodeTime(s.maxTimestamp),
          s.fireTimerAt === undefined ? null : encodeTime(s.fireTimerAt),
        ]);
      }
      windows.push([key, list]);
    }
    const timers = this.timers
      .toArray()
      .filter((t) => t.slot.live && (filter === undefined || filter.key(t.key)))
      .map((t) => [encodeTime(t.time), t.key, encodeTime(t.slot.start), t.cleanup]);
    return { watermark: encodeTime(this.watermark), windows, timers };
  }

  override restore(state: JsonValue, merge = false): void {
    const s = state as {
      watermark: JsonValue;
      windows: [
        string,
        [JsonValue, JsonValue, JsonValue, boolean, number, JsonValue, JsonValue][],
      ][];
      timers: [JsonValue, string, JsonValue, boolean][];
    };
    this.watermark = restoredTime(this.watermark, s.watermark, merge);
    if (!merge) {
      this.windows.clear();
      this.timers.clear();
    }
    for (const [key, list] of s.windows) {
      const slots = this.slotsOf(key);
      for (const [start, end, acc, empty, count, maxTimestamp, fireTimerAt] of list) {
        const slot = newSlot(decodeTime(start), decodeTime(end));
        slot.acc = acc === null && empty ? undefined : acc;
        slot.empty = empty;
        slot.count = count;
        slot.maxTimestamp = decodeTime(maxTimestamp);
        slot.fireTimerAt = fireTimerAt === null ? undefined : decodeTime(fireTimerAt);
        slots.set(slot.start, slot);
      }
    }
    for (const [time, key, start, cleanup] of s.timers) {
      const slot = this.windows.get(key)?.get(decodeTime(start));
      if (slot !== undefined) this.timers.push({ time: decodeTime(time), key, slot, cleanup });
    }
  }
}
