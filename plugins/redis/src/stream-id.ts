/**
 * Redis stream ids (`<ms>-<seq>`) as comparable pairs. Sequence numbers restart every
 * millisecond, so both halves stay far below 2^53 in practice and plain numbers suffice.
 */
export interface StreamId {
  readonly ms: number;
  readonly seq: number;
}

export function parseStreamId(id: string): StreamId | undefined {
  // indexOf + Number rather than a regex: this runs once per delivered record.
  const dash = id.indexOf('-');
  if (dash <= 0 || dash === id.length - 1) return undefined;
  const ms = Number(id.slice(0, dash));
  const seq = Number(id.slice(dash + 1));
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq) || ms < 0 || seq < 0)
    return undefined;
  return { ms, seq };
}

export function compareStreamIds(a: StreamId, b: StreamId): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

/** The smallest id after `id`. */
export function nextStreamId(id: StreamId): StreamId {
  return { ms: id.ms, seq: id.seq + 1 };
}

export function formatStreamId(id: StreamId): string {
  return `${id.ms}-${id.seq}`;
}

/**
 * The consumer-group "last delivered id" that makes the group start at `timestamp`:
 * every entry with id >= `<timestamp>-0` is delivered.
 */
export function lastIdBeforeTimestamp(timestamp: number): string {
  if (timestamp <= 0) return '0';
  return `${Math.floor(timestamp) - 1}-18446744073709551615`;
}
