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
}
