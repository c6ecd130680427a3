import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ConfigError, type StreamRecord } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import type { GitHubEvent } from './event-types.js';
import { ghArchiveBackfill, ghArchiveHourFile } from './gap-backfill.js';
import { replayInput, type ReplayInputOptions } from './replay-input.js';

const fixture = new URL('../../../test/fixtures/github/events.ndjson.gz', import.meta.url).pathname;
const events = gunzipSync(readFileSync(fixture))
  .toString('utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as GitHubEvent);
const signal = new AbortController().signal;

async function replayIds(options: Omit<ReplayInputOptions, 'paths'>): Promise<string[]> {
  const source = await replayInput.create('events', { paths: fixture, ...options }).createSource({
    stageId: 'events',
    pipelineName: 'test',
    logger: { debug() {}, info() {}, warn() {}, error() {}, child: () => undefined as never },
    signal,
  });
  const ids: string[] = [];
  let batch: StreamRecord<GitHubEvent>[] | null;
  while ((batch = await source.poll(700, signal)) !== null)
    ids.push(...batch.map((r) => r.value.id));
  await source.close();
  return ids.sort();
}

describe('GH Archive back-fill of a feed gap', () => {
  it('names every UTC hour file from the newest seen to the oldest fetched event, unpadded', () => {
    expect(ghArchiveHourFile(Date.UTC(2026, 11, 3, 8))).toBe('2026-12-03-8.json.gz');
    const backfill = ghArchiveBackfill({
      newestSeenId: '100',
      newestSeenCreatedAt: '2026-12-02T23:59:30Z',
      oldestFetchedId: '200',
      oldestFetchedCreatedAt: '2026-12-03T01:00:05Z',
      feed: { repo: 'a/b' },
    });
    expect(backfill.hours).toEqual([
      'https://data.gharchive.org/2026-12-02-23.json.gz',
      'https://data.gharchive.org/2026-12-03-0.json.gz',
      'https://data.gharchive.org/2026-12-03-1.json.gz',
    ]);
    expect(backfill.replay).toEqual({ idsAfter: '100', idsBefore: '200', feed: { repo: 'a/b' } });
  });

  it('replays only the ids strictly between the bounds (numeric order, not string order)', async () => {
    const sorted = events.map((e) => BigInt(e.id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const after = sorted[1000]!;
    const before = sorted[3000]!;
    const expected = events
      .filter((e) => BigInt(e.id) > after && BigInt(e.id) < before)
      .map((e) => e.id)
      .sort();
    expect(expected.length).toBe(1999);
    expect(await replayIds({ idsAfter: String(after), idsBefore: String(before) })).toEqual(
      expected,
    );
  });

  it('replays only what a repo, org or user feed would have served', async () => {
    const repo = events.find((e) => e.type === 'PushEvent')!.repo.name;
    const org = events.find((e) => e.org !== undefined)!.org!.login;
    const user = events[5000]!.actor.login;
    const keep = (f: (e: GitHubEvent) => boolean) =>
      events
        .filter(f)
        .map((e) => e.id)
        .sort();
    const byRepo = keep((e) => e.repo.name.toLowerCase() === repo.toLowerCase());
    const byOrg = keep((e) => e.org?.login.toLowerCase() === org.toLowerCase());
    const byUser = keep((e) => e.actor.login.toLowerCase() === user.toLowerCase());
    for (const list of [byRepo, byOrg, byUser]) expect(list.length).toBeGreaterThan(0);
    expect(await replayIds({ feed: { repo: repo.toUpperCase() } })).toEqual(byRepo);
    expect(await replayIds({ feed: { org } })).toEqual(byOrg);
    expect(await replayIds({ feed: { user } })).toEqual(byUser);
  });

  it('refuses an id that is not a plain number', () => {
    expect(() => replayInput.create('events', { paths: fixture, idsAfter: '12a' })).toThrow(
      ConfigError,
    );
    expect(() => replayInput.create('events', { paths: fixture, idsBefore: '007' })).toThrow(
      /idsBefore/,
    );
  });
});
