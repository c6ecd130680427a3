import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ConfigError, silentLogger } from '@codefeedr/core';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';
import {
  trendingRepositories,
  trendingRepositoriesBuilder,
  trendingRepositoriesPipeline,
} from './trending-repositories-pipeline.js';
import type { TrendingRepository } from './trending-repositories-ranking.js';
import {
  bundledEvents,
  iso,
  rowsInline,
  rowsOverKafka,
  readNdjson,
  type FixtureEvent,
} from './windowed-test-support.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-trending-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const HOUR = 3_600_000;
const MINUTE = 60_000;

/**
 * The rows the pipeline should emit, by plain loops: each star or fork is counted in every
 * window [start, start + windowMs) whose start is a multiple of slideMs and contains its
 * created_at; per window, repositories by stars + forks, then stars, then name; the first `top`.
 */
function expectedTrending(
  events: readonly FixtureEvent[],
  windowMs: number,
  slideMs: number,
  top: number,
): TrendingRepository[] {
  const windows = new Map<number, Map<string, { stars: number; forks: number }>>();
  for (const e of events) {
    if (e.type !== 'WatchEvent' && e.type !== 'ForkEvent') continue;
    const t = Date.parse(e.created_at);
    for (
      let start = Math.ceil((t - windowMs + 1) / slideMs) * slideMs;
      start <= t;
      start += slideMs
    ) {
      expect(start <= t && t < start + windowMs).toBe(true);
      let repos = windows.get(start);
      if (!repos) windows.set(start, (repos = new Map()));
      const counts = repos.get(e.repo.name) ?? { stars: 0, forks: 0 };
      if (e.type === 'WatchEvent') counts.stars++;
      else counts.forks++;
      repos.set(e.repo.name, counts);
    }
  }
  const rows: TrendingRepository[] = [];
  for (const start of [...windows.keys()].sort((a, b) => a - b)) {
    const ranked = [...windows.get(start)!.entries()].sort(
      ([a, x], [b, y]) =>
        y.stars + y.forks - (x.stars + x.forks) ||
        y.stars - x.stars ||
        (a < b ? -1 : a > b ? 1 : 0),
    );
    ranked.slice(0, top).forEach(([repo, c], i) =>
      rows.push({
        id: `${iso(start)}#${i + 1}`,
        windowStart: iso(start),
        windowEnd: iso(start + windowMs),
        rank: i + 1,
        repo,
        stars: c.stars,
        forks: c.forks,
      }),
    );
  }
  return rows;
}

const inOrder = (rows: TrendingRepository[]) =>
  [...rows].sort((a, b) => a.windowStart.localeCompare(b.windowStart) || a.rank - b.rank);

describe('trending-repositories', () => {
  const events = bundledEvents();
  const expected = expectedTrending(events, HOUR, 5 * MINUTE, 10);

  it('emits the top 10 by stars + forks of every 1 h window sliding by 5 min, as an independent count (inline, NDJSON)', async () => {
    // The fixture has something to rank: the full 2015 hour gives 24 overlapping windows.
    expect(expected.length).toBeGreaterThan(200);
    const path = join(dir, 'inline.ndjson');
    const rows = await rowsInline<TrendingRepository>(
      trendingRepositoriesPipeline({ output: 'ndjson', path }),
      path,
    );
    expect(inOrder(rows)).toEqual(expected);
  });

  it('takes window size, slide and N from its config, printing to the console', async () => {
    // 45 min every 20 min: window ends are not on the slide grid, which the ranking must follow.
    const want = expectedTrending(events, 45 * MINUTE, 20 * MINUTE, 3);
    let printed = '';
    vi.spyOn(process.stdout, 'write').mockImplementation(((
      chunk: string | Uint8Array,
      ...rest: unknown[]
    ) => {
      printed += String(chunk);
      (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
      return true;
    }) as typeof process.stdout.write);
    const pipeline = await trendingRepositories.create({
      windowMs: 45 * MINUTE,
      slideMs: 20 * MINUTE,
      top: 3,
    });
    const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
    vi.restoreAllMocks();
    expect(summary.deadLetters).toEqual([]);
    const rows = printed
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as TrendingRepository);
    expect(inOrder(rows)).toEqual(want);
    expect(rows.every((r) => r.rank <= 3)).toBe(true);
  });

  it('gives the same rows with every edge through Kafka (local mode)', async () => {
    const path = join(dir, 'local.ndjson');
    const rows = await rowsOverKafka<TrendingRepository>(
      trendingRepositoriesBuilder({ output: 'ndjson', path }),
      path,
    );
    expect(inOrder(rows)).toEqual(expected);
  }, 180_000);

  it('dead-letters events behind the watermark bound, saying why, instead of dropping them', async () => {
    // The 2015 hour's stars and forks, then older ones: those arrive after their windows closed.
    const lines = gunzipSync(readFileSync(BUNDLED_EVENTS)).toString('utf8').split('\n');
    const starsAndForks = lines.filter((l) => /"type":"(WatchEvent|ForkEvent)"/.test(l));
    const hour = starsAndForks.filter((l) => l.includes('"created_at":"2015-01-01T12:'));
    const older = starsAndForks.filter(
      (l) =>
        Date.parse((JSON.parse(l) as FixtureEvent).created_at) < Date.parse('2015-01-01T11:00:00Z'),
    );
    expect(hour.length).toBeGreaterThan(100);
    expect(older.length).toBeGreaterThan(0);
    writeFileSync(join(dir, 'a-hour.ndjson'), hour.join('\n') + '\n');
    writeFileSync(join(dir, 'b-older.ndjson'), older.join('\n') + '\n');
    const path = join(dir, 'late.ndjson');
    const deadLetters = join(dir, 'dlq');
    const builder = trendingRepositoriesBuilder({
      paths: [join(dir, 'a-hour.ndjson'), join(dir, 'b-older.ndjson')],
      output: 'ndjson',
      path,
    }).setDeadLetter({ dir: deadLetters, retries: 0 });
    // One event per batch: the watermark moves on after every event, so every older one is late.
    const summary = await builder
      .build()
      .run({ mode: 'inline', logger: silentLogger, batchSize: 1 });
    expect(summary.deadLetters).toEqual([
      expect.objectContaining({ stage: 'trending', count: older.length }),
    ]);
    const [file] = readdirSync(deadLetters);
    const letters = readNdjson<Record<string, unknown>>(join(deadLetters, file!));
    expect(letters).toHaveLength(older.length);
    // The user-function wrapper carries the LateEventError's message: what to raise, by how much.
    for (const letter of letters)
      expect(JSON.stringify(letter)).toMatch(/came after the watermark .* raise outOfOrdernessMs/);
    const hourEvents = hour.map((l) => JSON.parse(l) as FixtureEvent);
    expect(inOrder(readNdjson<TrendingRepository>(path))).toEqual(
      expectedTrending(hourEvents, HOUR, 5 * MINUTE, 10),
    );
  });

  it('refuses an unknown output with a ConfigError', () => {
    let error: unknown;
    try {
      trendingRepositoriesPipeline({ output: 'printer' as 'console' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/output/);
  });

  it('refuses a slide longer than the window', () => {
    expect(() => trendingRepositoriesPipeline({ windowMs: MINUTE, slideMs: HOUR })).toThrow(
      /slideMs must not exceed windowMs/,
    );
  });
});
