import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { sourceRecordError } from '@codefeedr/core';
import type { StreamRecord } from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { GitHubEvent } from './event-types.js';
import type { GitHubReplaySource } from './replay-input.js';
import { replayFiles, replayInput, type ReplayInputOptions } from './replay-input.js';

const fixture = new URL('../../../test/fixtures/github/events.ndjson.gz', import.meta.url).pathname;
const lines = gunzipSync(readFileSync(fixture)).toString('utf8').split('\n').filter(Boolean);
const events = lines.map((line) => JSON.parse(line) as GitHubEvent);
const dir = mkdtempSync(join(tmpdir(), 'cf-github-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;

/** created_at, then numeric id: computed here with BigInt, independently of the source. */
function eventTimeOrder(list: readonly GitHubEvent[]): string[] {
  return [...list]
    .sort((a, b) => {
      const t = Date.parse(a.created_at) - Date.parse(b.created_at);
      return t !== 0 ? t : a.id === b.id ? 0 : BigInt(a.id) < BigInt(b.id) ? -1 : 1;
    })
    .map((e) => e.id);
}

async function open(
  options: ReplayInputOptions,
  split?: { index: number; count: number },
): Promise<GitHubReplaySource> {
  const stage = replayInput.create('replay', options);
  return (await stage.createSource({
    stageId: 'replay',
    pipelineName: 'test',
    logger: { debug() {}, info() {}, warn() {}, error() {}, child: () => undefined as never },
    signal,
    ...(split === undefined ? {} : { split }),
  })) as GitHubReplaySource;
}

async function drain(source: GitHubReplaySource, limit = Infinity, maxRecords = 500) {
  const out: StreamRecord<GitHubEvent>[] = [];
  while (out.length < limit) {
    const batch = await source.poll(Math.min(maxRecords, limit - out.length), signal);
    if (batch === null) break;
    out.push(...batch);
  }
  return out;
}

const ids = (records: StreamRecord<GitHubEvent>[]) => records.map((r) => r.value.id);

describe('GitHub replay input', () => {
  it('replays every event of the fixture in event-time order, then ends', async () => {
    const source = await open({ paths: fixture });
    const out = await drain(source);
    expect(out).toHaveLength(10_557);
    expect(ids(out)).toEqual(eventTimeOrder(events));
    expect(out.every((r) => r.timestamp === Date.parse(r.value.created_at))).toBe(true);
    expect(out.every((r) => r.key === r.value.repo.name)).toBe(true);
    expect(await source.poll(10, signal)).toBeNull();
  });

  it('orders GH Archive hour files by the hour they name (…-9 before …-10) and reads folders', async () => {
    const hourDir = mkdtempSync(join(dir, 'hours-'));
    const ofHour = (h: string) =>
      events.filter((e) => e.created_at.startsWith(`2015-01-01T12:${h}`));
    // Name the later minutes "hour 9" and the earlier "hour 10": the file order must follow the names.
    writeFileSync(
      join(hourDir, '2015-01-01-10.json.gz'),
      gzipSync(
        ofHour('0')
          .map((e) => JSON.stringify(e))
          .join('\n'),
      ),
    );
    writeFileSync(
      join(hourDir, '2015-01-01-9.json.gz'),
      gzipSync(
        ofHour('5')
          .map((e) => JSON.stringify(e))
          .join('\n'),
      ),
    );
    writeFileSync(join(hourDir, 'README.md'), 'not data');
    expect(replayFiles(hourDir).map((p) => p.slice(hourDir.length + 1))).toEqual([
      '2015-01-01-9.json.gz',
      '2015-01-01-10.json.gz',
    ]);
    const out = await drain(await open({ paths: hourDir }));
    expect(ids(out)).toEqual([...eventTimeOrder(ofHour('5')), ...eventTimeOrder(ofHour('0'))]);
  });

  it('in a split run, split i of n replays every n-th hour file from the i-th, each in event-time order', async () => {
    const hourDir = mkdtempSync(join(dir, 'split-hours-'));
    // Five "hours": the fixture's 12:00-12:59 hour cut into its minutes 0x, 1x, ... 4x.
    const minutes = ['0', '1', '2', '3', '4'];
    const ofMinutes = (m: string) =>
      events.filter((e) => e.created_at.startsWith(`2015-01-01T12:${m}`));
    minutes.forEach((m, hour) =>
      writeFileSync(
        join(hourDir, `2015-01-02-${hour}.json.gz`),
        gzipSync(
          ofMinutes(m)
            .map((e) => JSON.stringify(e))
            .join('\n'),
        ),
      ),
    );
    const split0 = ids(await drain(await open({ paths: hourDir }, { index: 0, count: 2 })));
    const split1 = ids(await drain(await open({ paths: hourDir }, { index: 1, count: 2 })));
    expect(split0).toEqual(['0', '2', '4'].flatMap((m) => eventTimeOrder(ofMinutes(m))));
    expect(split1).toEqual(['1', '3'].flatMap((m) => eventTimeOrder(ofMinutes(m))));
    // A paced replay cannot split: each split would pace from its own first event.
    expect(() =>
      replayInput.create('replay', { paths: hourDir, speed: 60 }).createSource({
        stageId: 'replay',
        pipelineName: 'test',
        logger: undefined as never,
        signal,
        split: { index: 0, count: 2 },
      }),
    ).toThrow(/speed: a paced replay cannot run in 2 splits/);
  });

  it('sends lines that are not JSON or not events to the dead-letter path, keeping the rest', async () => {
    const path = join(dir, 'mixed.ndjson');
    const good = events.slice(300, 320);
    writeFileSync(
      path,
      [
        ...good.slice(0, 10).map((e) => JSON.stringify(e)),
        '{not json',
        // Not an event; exactly these bytes must reach the dead letters (spacing, 1.50, \u escapes).
        '{ "created_at" : "2015-01-01T12:00:00Z", "hello": "w\\u00f6rld", "n": 1.50 }',
        ...good.slice(10).map((e) => JSON.stringify(e)),
      ].join('\n'),
    );
    const out = await drain(await open({ paths: path }));
    const bad = out.filter((r) => sourceRecordError(r) !== undefined);
    expect(bad.map((r) => r.value).sort()).toEqual([
      '{ "created_at" : "2015-01-01T12:00:00Z", "hello": "w\\u00f6rld", "n": 1.50 }',
      '{not json',
    ]);
    const notEvent = bad.find((r) => String(r.value).includes('hello'))!;
    expect(sourceRecordError(notEvent)!.message).toMatch(/mixed\.ndjson:12: not a GitHub event/);
    expect(notEvent.headers).toMatchObject({
      'codefeedr-source-file': path,
      'codefeedr-source-line': '12',
    });
    expect(ids(out.filter((r) => sourceRecordError(r) === undefined))).toEqual(
      eventTimeOrder(good),
    );
  });

  it.each(['event-time', 'file'] as const)(
    'resumes from a saved position without re-emitting or skipping (%s order, across files)',
    async (order) => {
      const a = join(dir, `${order}-a.ndjson.gz`);
      const b = join(dir, `${order}-b.ndjson`);
      writeFileSync(a, gzipSync(lines.slice(0, 700).join('\n')));
      writeFileSync(b, lines.slice(700, 1500).join('\n'));
      const expected = ids(await drain(await open({ paths: [a, b], order })));
      expect(expected).toHaveLength(1500);
      for (const stopAt of [1, 333, 700, 1111]) {
        const first = await open({ paths: [a, b], order });
        const part = await drain(first, stopAt, 97);
        const saved = JSON.parse(JSON.stringify(first.position()));
        await first.close();
        const second = await open({ paths: [a, b], order });
        await second.restore(saved);
        const rest = await drain(second);
        expect([...ids(part), ...ids(rest)]).toEqual(expected);
      }
    },
  );

  it('paces by event time with a speed factor', async () => {
    // 2015-01-01T12:00:00..12:00:20 is 20 s of event time; at speed 40 that takes >= 0.5 s.
    const window = events.filter(
      (e) => e.created_at >= '2015-01-01T12:00:00Z' && e.created_at < '2015-01-01T12:00:20Z',
    );
    const path = join(dir, 'paced.ndjson');
    writeFileSync(path, window.map((e) => JSON.stringify(e)).join('\n'));
    const span = Date.parse(window.at(-1)!.created_at) - Date.parse(window[0]!.created_at);
    const began = Date.now();
    const out = await drain(await open({ paths: path, speed: 40 }));
    const elapsed = Date.now() - began;
    expect(out).toHaveLength(window.length);
    expect(elapsed).toBeGreaterThanOrEqual(span / 40 - 20);
    expect(elapsed).toBeLessThan(span / 40 + 5_000);
  });

  it('reports a missing file clearly', () => {
    expect(() =>
      replayInput.create('replay', { paths: join(dir, 'nope.json.gz') }).createSource({} as never),
    ).toThrow(/GITHUB_REPLAY_FILE_UNREADABLE|Cannot read replay file/);
  });
});
