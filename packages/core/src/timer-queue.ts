/**
 * A binary min-heap of event-time timers, earliest first. Hand-written (40 lines) because
 * the maintained heaps on npm do not fit the dual build: heap-js has no ESM exports map
 * and tinyqueue 3 is ESM-only (our CJS build would break).
 */
export class TimerQueue<T extends { time: number }> {
  private readonly items: T[] = [];

  /** `before(a, b)` breaks ties between timers of the same time. */
  constructor(private readonly before: (a: T, b: T) => boolean = (a, b) => a.time < b.time) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(item, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && this.before(items[right]!, items[left]!) ? right : left;
      if (!this.before(items[child]!, last)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  /** Every timer, in no particular order (for checkpoints). */
  toArray(): readonly T[] {
    return this.items;
  }

  clear(): void {
    this.items.length = 0;
  }
}

export interface KeyedTimer {
  time: number;
  key: string;
}

/** Same-time timers fire in key order, so a restored queue fires exactly as the original. */
const keyedTimerBefore = (a: KeyedTimer, b: KeyedTimer): boolean =>
  a.time < b.time || (a.time === b.time && a.key < b.key);

/**
 * The timers of one time domain of a keyed operator (Flink's InternalTimerServiceImpl
 * keeps one such queue per domain): at most one timer per key and time; a deleted timer
 * stays in the heap as a stale entry and is skipped when it comes up.
 */
export class KeyedTimers {
  private readonly queue = new TimerQueue<KeyedTimer>(keyedTimerBefore);
  /** key -> registered timer times. */
  private readonly registered = new Map<string, Set<number>>();

  register(key: string, time: number): void {
    let times = this.registered.get(key);
    if (times === undefined) {
      times = new Set();
      this.registered.set(key, times);
    }
    if (times.has(time)) return;
    times.add(time);
    this.queue.push({ time, key });
  }

  delete(key: string, time: number): void {
    const times = this.registered.get(key);
    if (times === undefined) return;
    times.delete(time);
    if (times.size === 0) this.registered.delete(key);
  }

  /** Removes and returns the earliest registered timer due at `time` (time <= `time`), if any. */
  pollDue(time: number): KeyedTimer | undefined {
    const queue = this.queue;
    for (let top = queue.peek(); top !== undefined && top.time <= time; top = queue.peek()) {
      queue.pop();
      const times = this.registered.get(top.key);
      if (times === undefined || !times.has(top.time)) continue; // deleted or already fired
      this.delete(top.key, top.time);
      return top;
    }
    return undefined;
  }

  /** `[key, time]` per registered timer (checkpoints), of the keys `filter` keeps. */
  toJson(filter?: { key(key: string): boolean }): [string, number][] {
    const timers: [string, number][] = [];
    for (const [key, times] of this.registered) {
      if (filter !== undefined && !filter.key(key)) continue;
      for (const t of times) timers.push([key, t]);
    }
    return timers;
  }

  /** Drops every timer (a restore that replaces the state). */
  clear(): void {
    this.registered.clear();
    this.queue.clear();
  }
}
