import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ConfigError } from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_EVENTS, githubSummaryPipeline, pipeline } from './github-summary-pipeline.js';
import { GitHubSummary, windowLabel } from './github-summary.js';

const ESC = '\u001b';
const dir = mkdtempSync(join(tmpdir(), 'cf-github-summary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RawEvent {
  id: string;
  type: string;
  created_at: string;
  repo: { name: string };
  payload: { size?: number; commits?: unknown[] };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Events per tumbling window of `sizeMs`, busiest first (ties: the earlier window), as printed. */
function busiestWindows(events: RawEvent[], sizeMs: number, n: number): [string, number][] {
  const counts = new Map<number, number>();
  for (const e of events) {
    const start = Math.floor(Date.parse(e.created_at) / sizeMs) * sizeMs;
    counts.set(start, (counts.get(start) ?? 0) + 1);
  }
  return [...counts]
    .sort(([a, x], [b, y]) => y - x || a - b)
    .slice(0, n)
    .map(([start, count]) => [windowLabel(iso(start), iso(start + sizeMs)), count]);
}

/**
 * Stars (WatchEvent) + forks (ForkEvent) per repository in every sliding window (1 h, every
 * 5 min); each window's top N; the window whose top N has the most stars + forks (the earliest
 * of equals), as [rank, repo, stars, forks] rows.
 */
function hottestTrendingWindow(events: RawEvent[], top: number) {
  const size = 3_600_000;
  const slide = 300_000;
  const windows = new Map<number, Map<string, { stars: number; forks: number }>>();
  for (const e of events) {
    if (e.type !== 'WatchEvent' && e.type !== 'ForkEvent') continue;
    const t = Date.parse(e.created_at);
    for (let start = Math.floor(t / slide) * slide; start > t - size; start -= slide) {
      const repos = windows.get(start) ?? new Map<string, { stars: number; forks: number }>();
      windows.set(start, repos);
      const c = repos.get(e.repo.name) ?? { stars: 0, forks: 0 };
      repos.set(e.repo.name, c);
      if (e.type === 'WatchEvent') c.stars++;
      else c.forks++;
    }
  }
  let best: { start: number; total: number; rows: [number, string, number, number][] } | undefined;
  for (const [start, repos] of [...windows].sort(([a], [b]) => a - b)) {
    const ranked = [...repos]
      .sort(
        ([a, x], [b, y]) =>
          y.stars + y.forks - (x.stars + x.forks) || y.stars - x.stars || (a < b ? -1 : 1),
      )
      .slice(0, top);
    const total = ranked.reduce((n, [, c]) => n + c.stars + c.forks, 0);
    if (best === undefined || total > best.total)
      best = {
        start,
        total,
        rows: ranked.map(([repo, c], i) => [i + 1, repo, c.stars, c.forks]),
      };
  }
  return { label: windowLabel(iso(best!.start), iso(best!.start + size)), rows: best!.rows };
}

/** Every figure the summary prints, computed plainly from the gzip file. */
function independentCounts(top: number) {
  const events = gunzipSync(readFileSync(BUNDLED_EVENTS))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RawEvent);
  const byType: Record<string, number> = {};
  const pushes: Record<string, number> = {};
  const commits: Record<string, number> = {};
  const repos = new Set<string>();
  let pushCount = 0;
  let commitCount = 0;
  let first = events[0]!;
  let last = events[0]!;
  for (const e of events) {
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    repos.add(e.repo.name);
    if (Date.parse(e.created_at) < Date.parse(first.created_at)) first = e;
    if (Date.parse(e.created_at) > Date.parse(last.created_at)) last = e;
    if (e.type !== 'PushEvent') continue;
    const n = e.payload.size ?? e.payload.commits?.length ?? 0;
    pushCount++;
    commitCount += n;
    pushes[e.repo.name] = (pushes[e.repo.name] ?? 0) + 1;
    commits[e.repo.name] = (commits[e.repo.name] ?? 0) + n;
  }
  const ranked = (counts: Record<string, number>) =>
    Object.entries(counts)
      // Most first; ties by name in code-point order, as the summary documents.
      .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, top);
  return {
    ids: events.map((e) => e.id),
    total: events.length,
    repos: repos.size,
    first: first.created_at,
    last: last.created_at,
    pushCount,
    commitCount,
    byType,
    pushes,
    commits,
    topPushes: ranked(pushes),
    topCommits: ranked(commits),
    busiest10Minutes: busiestWindows(events, 600_000, Math.min(top, 5)),
    busiestHours: busiestWindows(events, 3_600_000, Math.min(top, 5)),
    trending: hottestTrendingWindow(events, top),
  };
}

/** Reads every figure back out of the printed (plain) summary. */
function parsePrinted(text: string) {
  const lines = text.split('\n');
  const num = (s: string) => Number(s.replaceAll(',', ''));
  const head = lines[1]!.match(/^([\d,]+) events in ([\d,]+) repositories, (.+) → (.+)$/)!;
  const push = lines[2]!.match(/^([\d,]+) pushes carrying ([\d,]+) commits$/)!;
  const section = (title: string) => {
    const start = lines.findIndex((l) => l.startsWith(title));
    const end = lines.findIndex((l, i) => i > start && (l.trim() === '' || l.startsWith('Total')));
    return lines.slice(start + 1, end);
  };
  const byType: Record<string, number> = {};
  const shares: Record<string, string> = {};
  for (const row of section('EVENT TYPE')) {
    const m = row.match(/^(\S+)\s+([\d,]+)\s+([\d.]+)%$/)!;
    byType[m[1]!] = num(m[2]!);
    shares[m[1]!] = m[3]!;
  }
  const top = (title: string) =>
    section(title).map((row) => {
      const m = row.match(/^\s*(\d+)\. (.+?)\s+([\d,]+)$/)!;
      return [m[2]!, num(m[3]!)] as [string, number];
    });
  const total = lines.find((l) => l.startsWith('Total'))!.match(/([\d,]+)$/)![1]!;
  const trendingTitle = lines.find((l) => l.startsWith('TRENDING '))!;
  const trending = section('TRENDING ').map((row) => {
    const m = row.match(/^\s*(\d+)\. (.+?)\s+([\d,]+)\s+([\d,]+)$/)!;
    return [Number(m[1]), m[2]!, num(m[3]!), num(m[4]!)] as [number, string, number, number];
  });
  return {
    total: num(head[1]!),
    repos: num(head[2]!),
    first: head[3]!,
    last: head[4]!,
    pushCount: num(push[1]!),
    commitCount: num(push[2]!),
    byType,
    shares,
    totalRow: num(total),
    topPushes: top('TOP REPOSITORIES BY PUSHES'),
    topCommits: top('TOP REPOSITORIES BY COMMITS'),
    busiest10Minutes: top('BUSIEST 10-MINUTE WINDOWS (EVENT TIME)'),
    busiestHours: top('BUSIEST HOURS (EVENT TIME)'),
    trending: { label: /^TRENDING (\S+ \S+)/.exec(trendingTitle)![1]!, rows: trending },
  };
}

/** Every printed figure equals its independent count. */
function expectFigures(
  printed: ReturnType<typeof parsePrinted>,
  expected: ReturnType<typeof independentCounts>,
): void {
  expect(printed.total).toBe(expected.total);
  expect(printed.totalRow).toBe(expected.total);
  expect(printed.repos).toBe(expected.repos);
  expect(printed.first).toBe(expected.first.replace('T', ' '));
  expect(printed.last).toBe(expected.last.replace('T', ' '));
  expect(printed.pushCount).toBe(expected.pushCount);
  expect(printed.commitCount).toBe(expected.commitCount);
  expect(printed.byType).toEqual(expected.byType);
  for (const [type, count] of Object.entries(expected.byType))
    expect(printed.shares[type]).toBe(((100 * count) / expected.total).toFixed(1));
  expect(printed.topPushes).toEqual(expected.topPushes);
  expect(printed.topCommits).toEqual(expected.topCommits);
  expect(printed.busiest10Minutes).toEqual(expected.busiest10Minutes);
  expect(printed.busiestHours).toEqual(expected.busiestHours);
  expect(printed.trending).toEqual(expected.trending);
}

function capture() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { out, text: () => text };
}

describe('github-summary pipeline', () => {
  const expected = independentCounts(10);

  it('prints figures that match an independent count of the bundled events, and writes them as NDJSON', async () => {
    const { out, text } = capture();
    const output = join(dir, 'events.ndjson');
    const began = Date.now();
    const result = await githubSummaryPipeline({ output, out, tty: false }).run({
      mode: 'inline',
      batchSize: 1000,
    });
    expect(result.status).toBe('finished');
    expect(Date.now() - began).toBeLessThan(60_000);

    expectFigures(parsePrinted(text()), expected);
    // Plain output off a terminal: no escape codes.
    expect(text()).not.toContain(`${ESC}[`);

    const written = readFileSync(output, 'utf8').split('\n').filter(Boolean);
    expect(written.map((line) => (JSON.parse(line) as RawEvent).id).sort()).toEqual(
      [...expected.ids].sort(),
    );
    const deadLettered = result.metrics.stages.reduce((n, s) => n + s.deadLettered, 0);
    expect(deadLettered).toBe(0);
  });

  it('gives the same figures in a split run: two worker threads, every other GH Archive hour file each', async () => {
    // The bundled events as GH Archive hour files (YYYY-MM-DD-H.json.gz), one per hour they hold.
    const hours = join(dir, 'hours');
    mkdirSync(hours);
    const byHour = new Map<string, string[]>();
    for (const line of gunzipSync(readFileSync(BUNDLED_EVENTS)).toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const at = (JSON.parse(line) as RawEvent).created_at;
      const name = `${at.slice(0, 10)}-${Number(at.slice(11, 13))}.json.gz`;
      const hour = byHour.get(name) ?? [];
      byHour.set(name, hour);
      hour.push(line);
    }
    for (const [name, lines] of byHour)
      writeFileSync(join(hours, name), gzipSync(lines.join('\n')));
    expect(byHour.size).toBeGreaterThan(2);

    const { out, text } = capture();
    const output = join(dir, 'split.ndjson');
    const result = await githubSummaryPipeline({ paths: hours, output, out, tty: false }).run({
      mode: 'inline',
      batchSize: 1000,
      splits: 2,
    });
    expect(result.status).toBe('finished');
    expectFigures(parsePrinted(text()), expected);
    // One NDJSON file per split; together every event once.
    const written = ['split.split-0.ndjson', 'split.split-1.ndjson'].flatMap((f) =>
      readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean),
    );
    expect(written.map((line) => (JSON.parse(line) as RawEvent).id).sort()).toEqual(
      [...expected.ids].sort(),
    );
    // The threads' counts are the run's.
    const events = result.metrics.stages.find((s) => s.stage === 'events')!;
    expect(events.recordsOut).toBe(expected.total);
    expect(result.metrics.stages.reduce((n, s) => n + s.deadLettered, 0)).toBe(0);
  });

  it('gives the same figures when every edge goes through the buffer (local mode)', async () => {
    const local = new GitHubSummary();
    const out = new PassThrough().resume();
    await githubSummaryPipeline({ output: join(dir, 'local.ndjson'), out, summary: local }).run({
      mode: 'local',
      batchSize: 1000,
    });
    expect(local.events).toBe(expected.total);
    expect(Object.fromEntries(local.byType)).toEqual(expected.byType);
    expect(Object.fromEntries(local.pushesByRepo)).toEqual(expected.pushes);
    expect(Object.fromEntries(local.commitsByRepo)).toEqual(expected.commits);
    const label = (w: { windowStart: string; windowEnd: string }) =>
      windowLabel(w.windowStart, w.windowEnd);
    expect(local.busiestWindows(600_000, 5).map((w) => [label(w), w.events])).toEqual(
      expected.busiest10Minutes,
    );
    expect(local.hottestWindow() && label(local.hottestWindow()!)).toBe(expected.trending.label);
  });

  it('draws colours and redraws in place on a terminal, fitting the running view to its height', async () => {
    const { out, text } = capture();
    Object.assign(out, { rows: 20, columns: 100 });
    await githubSummaryPipeline({ output: join(dir, 'tty.ndjson'), out, tty: true }).run({
      mode: 'inline',
      batchSize: 1000,
    });
    expect(text()).toContain(`${ESC}[1m`);
    expect(text()).toContain('█');
    // Drawings are separated by "cursor up n lines, clear below"; n is the previous drawing's height.
    const erase = new RegExp(`${ESC}\\[(\\d+)F${ESC}\\[0J`);
    const parts = text().split(erase);
    const drawings = parts.filter((_, i) => i % 2 === 0);
    const moves = parts.filter((_, i) => i % 2 === 1).map(Number);
    expect(drawings.length).toBeGreaterThanOrEqual(2);
    moves.forEach((n, i) => expect(n).toBe(drawings[i]!.split('\n').length - 1));
    for (const running of drawings.slice(0, -1)) {
      expect(running.split('\n').length - 1).toBeLessThanOrEqual(19);
      expect(stripVTControlCharacters(running)).toContain('running)');
    }
    // The last drawing is the final, full one, with the same figures as the plain one.
    const final = stripVTControlCharacters(drawings.at(-1)!);
    expect(final).toContain('done)');
    expect(final).toContain(`${expected.total.toLocaleString('en-US')} events`);
    for (const type of Object.keys(expected.byType)) expect(final).toContain(type);
  });

  it('is a registry pipeline component that validates its config', async () => {
    expect(pipeline.kind).toBe('pipeline');
    expect(pipeline.name).toBe('github-summary');
    const built = await pipeline.create({ output: join(dir, 'x.ndjson') });
    expect(built.describe().stages.map((s) => s.id)).toEqual(
      expect.arrayContaining([
        'events',
        'push-events',
        'activity',
        'event-windows',
        'trending',
        'summary',
        'ndjson',
      ]),
    );
    await expect(pipeline.create({ top: 0, speed: -1 })).rejects.toThrow(ConfigError);
    await expect(pipeline.create({ top: 0, speed: -1 })).rejects.toThrow(/speed: [\s\S]*top: /);
  });
});
