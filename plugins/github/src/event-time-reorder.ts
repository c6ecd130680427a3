import { compareEventIds } from './recent-id-window.js';

/** The order key of an event: created_at in ms, then its numeric id. */
export interface EventTimeKey {
  timestamp: number;
  id: string;
}

export function compareEventTimeKeys(a: EventTimeKey, b: EventTimeKey): number {
  return a.timestamp !== b.timestamp ? a.timestamp - b.timestamp : compareEventIds(a.id, b.id);
}

/** A run of records read together; `live` counts those of them still buffered. */
export interface ReorderSegment<P> {
  /** Where reading this segment began (the caller's reader position). */
  readonly start: P;
  /** How many records had been offered before this segment's first one. */
  readonly offeredBefore: number;
  live: number;
}

interface Entry<T, P> extends EventTimeKey {
  /** The record; dropped (undefined) once released, so `last` keeps only a key. */
  value: T | undefined;
  /** Its size estimate (the caller's: a raw line's bytes), counted in `bytes` while held. */
  bytes: number;
  segment: ReorderSegment<P>;
}

/**
 * Puts a nearly sorted stream back into event-time order (created_at, then id) in bounded
 * memory: a record is held until a record more than `windowMs` newer has been offered (or
 * the buffer holds more than `maxRecords` records or `maxBytes` bytes by the caller's size
 * estimate), then released smallest first. A record older than one
 * already released cannot be put in order any more: `offer` says so and the caller emits
 * it at once (never dropped).
 *
 * Restore without storing the buffered records: everything released so far is ≤ `last`,
 * everything still buffered is > `last` (released in key order, late ones are < `last` when
 * they arrive). So re-reading from the oldest segment that still has a buffered record and
 * keeping only the records > `last` rebuilds the buffer exactly. Segments tell where that is.
 */
export class EventTimeReorderBuffer<T, P> {
  private readonly heap: Entry<T, P>[] = [];
  private readonly segments: ReorderSegment<P>[] = [];
  private segmentHead = 0;
  /** The last record released in order; null before the first. */
  last: EventTimeKey | null = null;
  /** The newest event time offered. */
  maxTimestamp = -Infinity;
  /** Records offered so far (in order and late ones). */
  offered = 0;
  private held = 0;

  constructor(
    readonly windowMs: number,
    readonly maxRecords: number,
    /** Bound on how far back (in records offered) a restore re-reads; older ones are released. */
    readonly maxSpan: number = Math.max(4 * maxRecords, 100_000),
    /** Bound on the sizes (as passed to `offer`) of the records held; Infinity: none. */
    readonly maxBytes: number = Infinity,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** The summed size estimates of the records held now. */
  get bytes(): number {
    return this.held;
  }

  /** Starts a new segment; the records offered next belong to it. */
  beginSegment(start: P): void {
    this.segments.push({ start, offeredBefore: this.offered, live: 0 });
  }

  /**
   * Buffers a record, or returns false when it is older than a record already released
   * (late: the caller emits it now). Only after `beginSegment`.
   */
  offer(timestamp: number, id: string, value: T, bytes = 0): boolean {
    this.offered++;
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    const last = this.last;
    if (
      last !== null &&
      (timestamp < last.timestamp ||
        (timestamp === last.timestamp && compareEventIds(id, last.id) <= 0))
    ) {
      return false;
    }
    const segment = this.segments[this.segments.length - 1]!;
    segment.live++;
    this.held += bytes;
    this.push({ timestamp, id, value, bytes, segment });
    return true;
  }

  /** Counts a record that is not offered (a bad line): spans are in records read. */
  skip(): void {
    this.offered++;
  }

  /**
   * Whether a re-read record (after a restore) was released before the checkpoint: it is
   * ≤ `last`. The others go back in with `offer`.
   */
  wasReleased(timestamp: number, id: string): boolean {
    const last = this.last;
    return (
      last !== null &&
      (timestamp < last.timestamp ||
        (timestamp === last.timestamp && compareEventIds(id, last.id) <= 0))
    );
  }

  /**
   * Moves up to `limit` records that are due into `out`, smallest first: older than the
   * newest by more than the window, over the record or byte bound, or held back beyond `maxSpan`;
   * every buffered record when `all` (end of input).
   */
  release(out: T[], limit: number, all = false): void {
    const horizon = this.maxTimestamp - this.windowMs;
    let n = 0;
    while (n < limit && this.heap.length > 0) {
      const top = this.heap[0]!;
      if (
        !all &&
        top.timestamp >= horizon &&
        this.heap.length <= this.maxRecords &&
        this.held <= this.maxBytes
      ) {
        const oldest = this.oldestLiveSegment();
        if (oldest === undefined || this.offered - oldest.offeredBefore <= this.maxSpan) break;
      }
      const entry = this.pop();
      out.push(entry.value!);
      entry.value = undefined; // `last` is this entry: keep its key, not the record

      n++;
    }
  }

  /**
   * Where a restore must start re-reading, and how many records to re-read from there: the
   * oldest segment with a record still buffered, else the newest (its records offered so far
   * were all emitted; the rest of it was not offered yet).
   */
  restartPoint(): { start: P; replay: number } | undefined {
    const segment = this.oldestLiveSegment() ?? this.segments[this.segments.length - 1];
    return segment === undefined
      ? undefined
      : { start: segment.start, replay: this.offered - segment.offeredBefore };
  }

  /** Forgets everything (a new file, or a restore). */
  reset(last: EventTimeKey | null = null, maxTimestamp = -Infinity, offered = 0): void {
    this.heap.length = 0;
    this.held = 0;
    this.segments.length = 0;
    this.segmentHead = 0;
    this.last = last;
    this.maxTimestamp = maxTimestamp;
    this.offered = offered;
  }

  private oldestLiveSegment(): ReorderSegment<P> | undefined {
    const segments = this.segments;
    while (this.segmentHead < segments.length && segments[this.segmentHead]!.live === 0) {
      this.segmentHead++;
    }
    // Drop released segments in bulk, so the array stays as short as what is buffered.
    if (this.segmentHead > 64 && this.segmentHead * 2 > segments.length) {
      segments.splice(0, this.segmentHead);
      this.segmentHead = 0;
    }
    return segments[this.segmentHead];
  }

  // A binary min-heap by (timestamp, id), written out: this runs once per record.
  private push(entry: Entry<T, P>): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (compareEventTimeKeys(p, entry) <= 0) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): Entry<T, P> {
    const heap = this.heap;
    const top = heap[0]!;
    const tail = heap.pop()!;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child =
          right < n && compareEventTimeKeys(heap[right]!, heap[left]!) < 0 ? right : left;
        if (compareEventTimeKeys(heap[child]!, tail) >= 0) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = tail;
    }
    top.segment.live--;
    this.held -= top.bytes;
    this.last = top; // an entry is a key: no allocation per record
    return top;
  }
}
