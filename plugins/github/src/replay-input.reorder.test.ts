// Event-time order through the bounded reorder buffer, as properties over random nearly
// sorted files: never a record lost or doubled, sorted when the disorder is within the
// window, late ones flagged, and a restore at any position continues exactly.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sourceRecordError } from '@codefeedr/core';
import type { StreamRecord } from '@codefeedr/core';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { GitHubEvent } from './event-types.js';
import { GitHubReplaySource, REPLAY_LATE_HEADER, replayInputConfigSchema } from './replay-input.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-github-reorder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;
const BASE = Date.parse('2024-03-01T12:00:00Z');

interface Line {
  id: string;
  ms: number;
  bad: boolean;
}

/** File lines: events at `BASE + ms` with distinct ids in random order, and some bad lines. */
const linesArb = fc
  .array(
    fc.record({
      step: fc.integer({ min: 0, max: 3_000 }), // ms after the previous event's nominal time
      delay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20_000 })), // published late by
      bad: fc.integer({ min: 0, max: 99 }).map((n) => n < 2), // a line that is not JSON
    }),
    { minLength: 1, maxLength: 250 },
  )
  .chain((specs) =>
    fc
      .shuffledSubarray(
        specs.map((_, i) => i),
        { minLength: specs.length, maxLength: specs.length },
      )
      .map((idOrder) => {
        let nominal = 0;
        return specs.map((spec, i): Line => {
          nominal += spec.step;
          return {
            id: String(5_000_000_000 + idOrder[i]!),
            ms: nominal - spec.delay,
            bad: spec.bad,
          };
        });
      }),
  );

let files = 0;
function writeLines(lines: readonly Line[], gzip: boolean): string {
  const text = lines
    .map((l) =>
      l.bad
        ? `{not json ${l.id}`
        : JSON.stringify({
            id: l.id,
            type: 'WatchEvent',
            actor: { id: 1, login: 'a' },
            repo: { id: 1, name: `r/${Number(l.id) % 7}` },
            payload: {},
            public: true,
            created_at: new Date(BASE + l.ms).toISOString(),
          }),
    )
    .join('\n');
  const path = join(dir, `f${files++}.ndjson${gzip ? '.gz' : ''}`);
  writeFileSync(path, gzip ? gzipSync(text) : text);
  return path;
}

const open = (paths: string[], windowMs: number, maxRecords: number) =>
  new GitHubReplaySource(
    replayInputConfigSchema.parse({
      paths,
      reorderWindowMs: windowMs,
      reorderMaxRecords: maxRecords,
    }),
  );

async function drain(source: GitHubReplaySource, limit: number, batch: number) {
  const out: StreamRecord<GitHubEvent>[] = [];
  while (out.length < limit) {
    const got = await source.poll(Math.min(batch, limit - out.length), signal);
    if (got === null) break;
    expect(got.length).toBeLessThanOrEqual(batch);
    out.push(...got);
  }
  return out;
}

/** What a record is, for comparing runs: event id (or the bad line) and its late flag. */
const label = (r: StreamRecord<GitHubEvent>) =>
  sourceRecordError(r) !== undefined
    ? `bad:${String(r.value)}`
    : `${r.value.id}${r.headers?.[REPLAY_LATE_HEADER] === undefined ? '' : ' late'}`;

/** Largest (now minus ms) over the events before each: the disorder, computed here. */
function disorderOf(lines: readonly Line[]): number {
  let max = -Infinity;
  let disorder = 0;
  for (const l of lines) {
    if (l.bad) continue;
    if (max - l.ms > disorder) disorder = max - l.ms;
    if (l.ms > max) max = l.ms;
  }
  return disorder;
}

const byEventTime = (a: Line, b: Line) =>
  a.ms - b.ms || a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describe('GitHub replay, event-time order through the reorder buffer', () => {
  it('emits a permutation of the input, sorted when the disorder is within the window, late ones flagged', async () => {
    await fc.assert(
      fc.asyncProperty(
        linesArb,
        fc.integer({ min: 0, max: 25_000 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 120 }),
        fc.boolean(),
        async (lines, windowMs, maxRecords, batch, gzip) => {
          const out = await drain(
            open([writeLines(lines, gzip)], windowMs, maxRecords),
            1e9,
            batch,
          );
          // A permutation: every line once, nothing added.
          const expected = lines.map((l) => (l.bad ? `bad:{not json ${l.id}` : l.id)).sort();
          expect(out.map((r) => label(r).replace(' late', '')).sort()).toEqual(expected);
          const events = out.filter((r) => sourceRecordError(r) === undefined);
          // Flagged exactly the events older than an event emitted before them.
          let newest: Line | undefined;
          for (const r of events) {
            const line = { id: r.value.id, ms: r.timestamp - BASE, bad: false };
            const late = newest !== undefined && byEventTime(line, newest) < 0;
            expect(r.headers?.[REPLAY_LATE_HEADER] !== undefined).toBe(late);
            if (late) expect(Number(r.headers![REPLAY_LATE_HEADER])).toBe(newest!.ms - line.ms);
            if (!late) newest = line;
          }
          // Within the window, and never over the size bound: sorted, no late event.
          const good = lines.filter((l) => !l.bad);
          if (disorderOf(lines) <= windowMs && good.length <= maxRecords) {
            expect(events.map((r) => r.value.id)).toEqual(
              [...good].sort(byEventTime).map((l) => l.id),
            );
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it('restores exactly at any position: nothing lost, nothing doubled, the same order and flags', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(linesArb, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 25_000 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 90 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (fileLines, windowMs, maxRecords, batch, where) => {
          const paths = fileLines.map((lines, i) => writeLines(lines, i % 2 === 0));
          const whole = (await drain(open(paths, windowMs, maxRecords), 1e9, batch)).map(label);
          const stopAt = Math.floor(where * whole.length);
          const first = open(paths, windowMs, maxRecords);
          const part = await drain(first, stopAt, batch);
          const saved = JSON.parse(JSON.stringify(first.position()));
          await first.close();
          const second = open(paths, windowMs, maxRecords);
          await second.restore(saved);
          const rest = await drain(second, 1e9, 1 + ((batch * 7) % 50));
          expect([...part, ...rest].map(label)).toEqual(whole);
          expect(second.lateEvents).toBe(whole.filter((l) => l.endsWith(' late')).length);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('keeps at most reorderMaxRecords events: a reversed file comes out whole, the overflow flagged late', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => ({
      id: String(7_000_000_000 + i),
      ms: (100 - i) * 1_000,
      bad: false,
    }));
    const source = open([writeLines(lines, false)], 3_600_000, 10);
    const out = await drain(source, 1e9, 1_000);
    expect(out).toHaveLength(100);
    // Ten fill the buffer; the eleventh pushes out the smallest held (itself), and every event
    // after it is older: 89 late, emitted as read; the ten held come out sorted at the end.
    expect(out[0]!.value.id).toBe(lines[10]!.id);
    expect(source.lateEvents).toBe(89);
    expect(out.slice(-10).map((r) => r.value.id)).toEqual(
      lines
        .slice(0, 10)
        .map((l) => l.id)
        .reverse(),
    );
  });
});

describe('GitHub replay, memory bounds', () => {
  it('keeps at most reorderMaxBytes of raw lines: held bytes never exceed it, the overflow flagged late', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => ({
      id: String(7_000_000_000 + i),
      ms: (100 - i) * 1_000,
      bad: false,
    }));
    const path = writeLines(lines, false);
    // Every line has the same length (same-length ids, dates and repository names).
    const lineBytes = Buffer.byteLength(readFileSync(path, 'utf8').split('\n')[0]!) + 1;
    const maxBytes = 10 * lineBytes + Math.floor(lineBytes / 2); // room for 10 lines, not 11
    const source = new GitHubReplaySource(
      replayInputConfigSchema.parse({
        paths: [path],
        reorderWindowMs: 3_600_000,
        reorderMaxRecords: 1_000, // the record bound alone would hold every event
        reorderMaxBytes: maxBytes,
      }),
    );
    const reorder = (source as unknown as { reorder: { bytes: number; size: number } }).reorder;
    const out: StreamRecord<GitHubEvent>[] = [];
    let mostHeld = 0;
    for (;;) {
      const got = await source.poll(7, signal);
      if (got === null) break;
      mostHeld = Math.max(mostHeld, reorder.bytes);
      expect(reorder.bytes).toBeLessThanOrEqual(maxBytes);
      expect(reorder.size).toBeLessThanOrEqual(10);
      out.push(...got);
    }
    expect(out).toHaveLength(100);
    expect(mostHeld).toBe(10 * lineBytes);
    // As with reorderMaxRecords 10: the eleventh pushes out the smallest held (itself).
    expect(out[0]!.value.id).toBe(lines[10]!.id);
    expect(source.lateEvents).toBe(89);
    expect(reorder.bytes).toBe(0);
  });

  it('lets go of every record it emitted: the reorder buffer keeps only the last key', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => ({
      id: String(8_000_000_000 + i),
      ms: i * 1_000,
      bad: false,
    }));
    const source = open([writeLines(lines, false)], 0, 5);
    const out = await drain(source, 20, 10);
    expect(out).toHaveLength(20);
    const reorder = (source as unknown as { reorder: { last: Record<string, unknown> } }).reorder;
    expect(reorder.last).toMatchObject({ id: lines[19]!.id });
    expect(reorder.last.value).toBeUndefined();
  });
});
