/**
 * The ids of the last `capacity` events emitted: a ring buffer for eviction order plus a Set
 * for O(1) membership, so memory stays bounded however long the poller runs.
 *
 * Why not only an id high-water mark: GitHub ids grow over time, but an event can show up
 * in the feed after a newer one was already served (it is published late). A high-water
 * mark would drop it; the window remembers exactly what was emitted. The feed holds at most
 * 300 events, so any event we already emitted and can see again is among the last 300
 * emitted: a capacity of 1,000 leaves a wide margin.
 */
export class RecentIdWindow {
  private readonly ring: (string | undefined)[];
  private readonly members = new Set<string>();
  private next = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`RecentIdWindow capacity must be a positive integer, got ${capacity}`);
    }
    this.ring = new Array<string | undefined>(capacity);
  }

  static from(ids: readonly string[], capacity: number): RecentIdWindow {
    const window = new RecentIdWindow(capacity);
    for (const id of ids.slice(-capacity)) window.add(id);
    return window;
  }

  get size(): number {
    return this.members.size;
  }

  has(id: string): boolean {
    return this.members.has(id);
  }

  add(id: string): void {
    if (this.members.has(id)) return;
    const evicted = this.ring[this.next];
    if (evicted !== undefined) this.members.delete(evicted);
    this.ring[this.next] = id;
    this.members.add(id);
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first: what a checkpoint stores. */
  ids(): string[] {
    const ordered: string[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const id = this.ring[(this.next + i) % this.capacity];
      if (id !== undefined) ordered.push(id);
    }
    return ordered;
  }
}

/** Orders GitHub's digit-string ids numerically without BigInt (ids have no leading zeros). */
export function compareEventIds(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
