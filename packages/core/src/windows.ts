import type { Collector, TimeWindow } from './datastream.js';
import { decodeTime, encodeTime, FAILED, type FailureHandler, Operator } from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { KeySelector, WindowFunction, WindowSpec } from './stream-graph.js';
import { TimerQueue } from './timer-queue.js';

/*
 * keyBy().window(): Flink's WindowOperator semantics.
 * - A window [start, end) has maxTimestamp end - 1; the event-time trigger fires when the
 *   watermark reaches it. Results carry that timestamp (global windows: the newest element's).
 * - A window is late once maxTimestamp + allowedLateness <= watermark: its state is dropped
 *   then, and an element whose every window is late goes to the late-data side output.
 *   Within allowed lateness, each late element fires the window again with its new contents.
 * - countTrigger(n) fires and purges every n elements (Flink's countWindow); elements of an
 *   unfinished count are dropped when the window is cleaned up, as in Flink.
 * - Session windows merge when they touch or overlap (Flink's TimeWindow.intersects).
 * - Global windows fire at the end of input (Flink's GlobalWindows.createWithEndOfStreamTrigger).
 * - reduce/aggregate keep one accumulator per window (incremental); process keeps the values.
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
}

interface WindowTimer {
  time: number;
  key: string;
  start: number;
  end: number;
  /** false: fire the window; true: drop its state. Firing goes first at equal times. */
  cleanup: boolean;
}

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/** The Collector of process window functions: emits with the window's key and timestamp. */
class WindowCollector implements Collector<unknown> {
  key = '';
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

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly keySelector: KeySelector,
    private readonly spec: WindowSpec,
    private readonly fn: WindowFunction,
  ) {
    super(failures, name);
    this.lateness = spec.allowedLatenessMs;
  }

  forward(value: unknown, key: string, timestamp: number): void {
    this.emit(value, key, timestamp, undefined);
  }

  protected override receive(r: StreamRecord): void {
    let key: string;
    try {
      key = this.keySelector(r.value);
    } catch (error) {
      const retried = this.failures.recover(
        error,
        () => this.keySelector(r.value),
        `keyBy of ${this.name}`,
        r,
      );
      if (retried === FAILED) return;
      key = retried;
    }
    const ts = r.timestamp;
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
        for (let start = ts - mod(ts, slideMs); start > ts - sizeMs; start -= slideMs) {
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
    if (!handled && this.spec.lateTag !== undefined) {
      this.emitSide(this.spec.lateTag, r.value, r.key, ts, r.headers);
    }
  }

  private isLate(end: number): boolean {
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

  private registerTimers(key: string, start: number, end: number): void {
    const maxTimestamp = end - 1;
    if (this.spec.countTrigger === undefined && maxTimestamp > this.watermark) {
      this.timers.push({ time: maxTimestamp, key, start, end, cleanup: false });
    }
    this.timers.push({ time: maxTimestamp + this.lateness, key, start, end, cleanup: true });
  }

  private addToWindow(key: string, start: number, end: number, r: StreamRecord): boolean {
    if (this.isLate(end)) return false;
    const slots = this.slotsOf(key);
    let slot = slots.get(start);
    if (slot === undefined) {
      slot = { start, end, acc: undefined, empty: true, count: 0, maxTimestamp: -Infinity };
      slots.set(start, slot);
      this.registerTimers(key, start, end);
    }
    this.addValue(key, slot, r);
    return true;
  }

  private addToSession(key: string, r: StreamRecord, gap: number): boolean {
    const ts = r.timestamp;
    let start = ts;
    let end = ts + gap;
    const slots = this.slotsOf(key);
    let touching: WindowSlot[] | undefined;
    for (const slot of slots.values()) {
      // Existing sessions never touch each other, so one pass finds every one to merge.
      if (slot.start <= ts + gap && slot.end >= ts) {
        (touching ??= []).push(slot);
        if (slot.start < start) start = slot.start;
        if (slot.end > end) end = slot.end;
      }
    }
    if (this.isLate(end)) return false;
    let target: WindowSlot;
    if (touching === undefined) {
      target = { start, end, acc: undefined, empty: true, count: 0, maxTimestamp: -Infinity };
      slots.set(start, target);
      this.registerTimers(key, start, end);
    } else if (touching.length === 1 && touching[0]!.start === start && touching[0]!.end === end) {
      target = touching[0]!;
    } else {
      touching.sort((a, b) => a.start - b.start);
      const parts = touching;
      const merged = this.mergeSlots(parts, start, end);
      if (merged === FAILED) return true; // dead-lettered; sessions stay as they were
      for (const part of parts) slots.delete(part.start);
      slots.set(start, merged);
      this.registerTimers(key, start, end);
      target = merged;
    }
    this.addValue(key, target, r);
    return true;
  }

  private mergeSlots(parts: WindowSlot[], start: number, end: number): WindowSlot | typeof FAILED {
    const merge = (): WindowSlot => {
      const merged: WindowSlot = {
        start,
        end,
        acc: undefined,
        empty: true,
        count: 0,
        maxTimestamp: -Infinity,
      };
      for (const part of parts) {
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
    try {
      return merge();
    } catch (error) {
      return this.failures.recover(error, merge, `session merge of ${this.name}`);
    }
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
    } else if (slot.end - 1 <= this.watermark) {
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
    const run = (): void => {
      if (fn.type === 'reduce') {
        this.emit(slot.acc, key, timestamp, undefined);
      } else if (fn.type === 'aggregate') {
        this.emit(fn.fn.getResult(slot.acc), key, timestamp, undefined);
      } else {
        const window: TimeWindow = { start: slot.start, end: slot.end };
        this.collector.key = key;
        this.collector.timestamp = timestamp;
        fn.fn(key, window, slot.acc as unknown[], this.collector);
      }
    };
    try {
      run();
    } catch (error) {
      this.failures.recover(error, run, this.name, {
        key,
        value: {
          window: { start: encodeTime(slot.start), end: encodeTime(slot.end) },
          contents: slot.acc,
        },
        timestamp,
      });
    }
  }

  protected override onWatermark(watermark: number): void {
    const timers = this.timers;
    for (let top = timers.peek(); top !== undefined && top.time <= watermark; top = timers.peek()) {
      timers.pop();
      const slots = this.windows.get(top.key);
      const slot = slots?.get(top.start);
      // Stale timers (a session merged away, state already dropped) are skipped.
      if (slots === undefined || slot === undefined || slot.end !== top.end) continue;
      if (!top.cleanup) {
        this.fire(top.key, slot);
      } else {
        slots.delete(top.start);
        if (slots.size === 0) this.windows.delete(top.key);
      }
    }
  }

  override snapshot(): JsonValue {
    const windows: JsonValue[] = [];
    for (const [key, slots] of this.windows) {
      const list: JsonValue[] = [];
      for (const s of slots.values()) {
        list.push([
          encodeTime(s.start),
          encodeTime(s.end),
          s.acc as JsonValue,
          s.empty,
          s.count,
          encodeTime(s.maxTimestamp),
        ]);
      }
      windows.push([key, list]);
    }
    const timers = this.timers
      .toArray()
      .map((t) => [encodeTime(t.time), t.key, encodeTime(t.start), encodeTime(t.end), t.cleanup]);
    return { watermark: encodeTime(this.watermark), windows, timers };
  }

  override restore(state: JsonValue): void {
    const s = state as {
      watermark: JsonValue;
      windows: [string, [JsonValue, JsonValue, JsonValue, boolean, number, JsonValue][]][];
      timers: [JsonValue, string, JsonValue, JsonValue, boolean][];
    };
    this.watermark = decodeTime(s.watermark);
    this.windows.clear();
    for (const [key, list] of s.windows) {
      const slots = this.slotsOf(key);
      for (const [start, end, acc, empty, count, maxTimestamp] of list) {
        const slot: WindowSlot = {
          start: decodeTime(start),
          end: decodeTime(end),
          acc: acc === null && empty ? undefined : acc,
          empty,
          count,
          maxTimestamp: decodeTime(maxTimestamp),
        };
        slots.set(slot.start, slot);
      }
    }
    for (const [time, key, start, end, cleanup] of s.timers) {
      this.timers.push({
        time: decodeTime(time),
        key,
        start: decodeTime(start),
        end: decodeTime(end),
        cleanup,
      });
    }
  }
}
