import type { Feed } from './github-feed.js';

/** GH Archive publishes each hour's file about an hour after the hour ends. */
const GH_ARCHIVE = 'https://data.gharchive.org/';
const HOUR_MS = 3_600_000;

/** The back-fill of one gap: which GH Archive hours hold the missed events, and the replay that picks them. */
export interface GapBackfill {
  /** Hour-file URLs (`https://data.gharchive.org/2026-12-03-8.json.gz`), oldest first. */
  hours: string[];
  /**
   * `replay` input options (besides `paths`: the downloaded hour files) that emit exactly the
   * missed events: ids strictly between the two the poller saw, of the same feed.
   */
  replay: { idsAfter: string; idsBefore: string; feed: Feed };
}

/** `Date.UTC(2026, 11, 3, 8)` → `2026-12-03-8.json.gz` (GH Archive does not pad the hour). */
export function ghArchiveHourFile(hourStartMs: number): string {
  const d = new Date(hourStartMs);
  const day = d.toISOString().slice(0, 10);
  return `${day}-${d.getUTCHours()}.json.gz`;
}

/**
 * What a gap between two polls needs to be filled from GH Archive: every UTC hour from the
 * newest event seen to the oldest one fetched after the gap (both ends included: the missed
 * events were created between them), and the id range and feed to keep.
 */
export function ghArchiveBackfill(gap: {
  newestSeenId: string;
  newestSeenCreatedAt: string;
  oldestFetchedId: string;
  oldestFetchedCreatedAt: string;
  feed: Feed;
}): GapBackfill {
  const from = Math.floor(Date.parse(gap.newestSeenCreatedAt) / HOUR_MS) * HOUR_MS;
  const to = Math.floor(Date.parse(gap.oldestFetchedCreatedAt) / HOUR_MS) * HOUR_MS;
  const hours: string[] = [];
  for (let h = from; h <= to; h += HOUR_MS)
    hours.push(new URL(ghArchiveHourFile(h), GH_ARCHIVE).href);
  return {
    hours,
    replay: { idsAfter: gap.newestSeenId, idsBefore: gap.oldestFetchedId, feed: gap.feed },
  };
}
