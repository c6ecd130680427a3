import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { defineOutput, defineTransform } from './component.js';
import type { DataStream } from './datastream.js';
import { Any, defineMessageType } from './message-type.js';
import { ndjsonFileInput } from './ndjson-file-input.js';
import { NdjsonFileSink, ndjsonFileOutput } from './ndjson-file-output.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { OutputStage } from './stage.js';
import { z } from 'zod';

/*
 * End to end over 10,557 real GitHub events: total commits pushed per repository.
 * Commit count of a PushEvent = `payload.size` (the number of commits in the push; GH
 * Archive caps `payload.commits` at 20 entries, so its length undercounts big pushes).
 * The keyed reduce emits a running total per record, so the LAST line per repo is its total.
 */

const fixture = resolve(import.meta.dirname, '../../../test/fixtures/github/events.ndjson.gz');
const dir = mkdtempSync(join(tmpdir(), 'cf-push-totals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface GithubEvent {
  type: string;
  repo: { name: string };
  payload: { size?: number };
}

const PushTotal = defineMessageType(
  'test.PushTotal',
  1,
  z.object({ repo: z.string(), commits: z.number().int().nonnegative() }),
);
type PushTotal = z.output<typeof PushTotal.schema>;

const pushTotals = defineTransform({
  name: 'push-totals',
  description: 'Total commits pushed per repository.',
  configSchema: z.object({}),
  inputTypes: [Any] as const,
  outputType: PushTotal,
  transform: ([events]) =>
    (events as DataStream<GithubEvent>)
      .filter((e) => e.type === 'PushEvent')
      .map((e): PushTotal => ({ repo: e.repo.name, commits: e.payload.size ?? 0 }))
      .keyBy((t) => t.repo)
      .reduce((a, b) => ({ repo: a.repo, commits: a.commits + b.commits })),
});

/** The same totals computed plainly from the gzip file, without any CodeFeedr code. */
function expectedTotals(): { totals: Map<string, number>; pushEvents: number } {
  const totals = new Map<string, number>();
  let pushEvents = 0;
  for (const line of gunzipSync(readFileSync(fixture)).toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    const event = JSON.parse(line) as GithubEvent;
    if (event.type !== 'PushEvent') continue;
    pushEvents++;
    totals.set(event.repo.name, (totals.get(event.repo.name) ?? 0) + (event.payload.size ?? 0));
  }
  return { totals, pushEvents };
}

function lastPerRepo(path: string): { totals: Map<string, number>; lines: number } {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const totals = new Map<string, number>();
  for (const line of lines) {
    const t = JSON.parse(line) as PushTotal;
    totals.set(t.repo, t.commits);
  }
  return { totals, lines: lines.length };
}

describe('GitHub push totals, end to end', () => {
  const expected = expectedTotals();

  for (const mode of ['inline', 'local'] as const) {
    it(`ndjsonFileInput -> filter/map/keyBy/reduce -> ndjsonFileOutput gives the right totals (${mode})`, async () => {
      const out = join(dir, `totals-${mode}.ndjson`);
      const pipeline = new PipelineBuilder('github-push-totals')
        .append(ndjsonFileInput.create('events', { path: fixture, timestampField: 'created_at' }))
        .append(pushTotals.create('push-totals'))
        .append(ndjsonFileOutput.create('totals', { path: out, mode: 'truncate' }))
        .build();
      const summary = await pipeline.run({ mode, batchSize: 1000 });
      expect(summary.status).toBe('finished');
      const { totals, lines } = lastPerRepo(out);
      expect(totals).toEqual(expected.totals);
      // One running total per PushEvent, not one per repo.
      expect(lines).toBe(expected.pushEvents);
      expect(expected.totals.size).toBeGreaterThan(1000);
    });
  }

  it('stopped mid-file and restarted from its checkpoint, the inline pipeline still gets every total right', async () => {
    const out = join(dir, 'totals-restart.ndjson');
    const checkpointDir = join(dir, 'checkpoints');
    const stop = new AbortController();
    // Writes like ndjsonFileOutput, and stops the run once 1,000 totals are written.
    const stoppingOutput = defineOutput({
      name: 'stopping-ndjson',
      description: 'ndjson file output that stops the run after 1,000 records.',
      configSchema: z.object({}),
      inputTypes: [Any] as const,
      createSink: async () => {
        const sink = await NdjsonFileSink.open({ path: out, mode: 'truncate', format: 'value' });
        let written = 0;
        return {
          write: async (batch) => {
            await sink.write(batch);
            written += batch.length;
            if (written >= 1000) stop.abort();
          },
          flush: () => sink.flush(),
          close: () => sink.close(),
        };
      },
    });
    const pipeline = (output: OutputStage<readonly [unknown]>) =>
      new PipelineBuilder('github-push-totals-restart')
        .append(ndjsonFileInput.create('events', { path: fixture, timestampField: 'created_at' }))
        .append(pushTotals.create('push-totals'))
        .append(output)
        .build();

    const first = await pipeline(stoppingOutput.create('totals')).run({
      mode: 'inline',
      batchSize: 100,
      checkpointDir,
      signal: stop.signal,
    });
    expect(first.status).toBe('stopped');
    const { lines: before } = lastPerRepo(out);
    expect(before).toBeLessThan(expected.pushEvents);

    const second = await pipeline(
      ndjsonFileOutput.create('totals', { path: out, mode: 'append' }),
    ).run({
      mode: 'inline',
      batchSize: 100,
      checkpointDir,
    });
    expect(second.status).toBe('finished');
    const { totals, lines } = lastPerRepo(out);
    expect(totals).toEqual(expected.totals);
    // Resumed from the checkpoint (keyed state and file position), not from the start.
    expect(lines).toBeGreaterThanOrEqual(expected.pushEvents);
    expect(lines).toBeLessThan(expected.pushEvents + 500);
  });

  it('event-time windows over the real events: counts per type per 10 minutes (inline)', async () => {
    const TEN_MINUTES = 10 * 60_000;
    const perWindow = new Map<string, number>();
    for (const line of gunzipSync(readFileSync(fixture)).toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const event = JSON.parse(line) as GithubEvent & { created_at: string };
      const start = Math.floor(Date.parse(event.created_at) / TEN_MINUTES) * TEN_MINUTES;
      const id = `${event.type} ${new Date(start).toISOString()}`;
      perWindow.set(id, (perWindow.get(id) ?? 0) + 1);
    }
    const typeCounts = defineTransform({
      name: 'type-counts',
      description: 'Events per type per 10-minute window.',
      configSchema: z.object({}),
      inputTypes: [Any] as const,
      outputType: Any,
      transform: ([events]) =>
        (events as DataStream<GithubEvent>)
          .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
          .keyBy((e) => e.type)
          .window({ type: 'tumbling', sizeMs: TEN_MINUTES })
          .process<string>((type, window, values, out) => {
            out.collect(`${type} ${new Date(window.start).toISOString()} ${values.length}`);
          }),
    });
    const out = join(dir, 'type-counts.ndjson');
    await new PipelineBuilder('github-type-counts')
      .append(ndjsonFileInput.create('events', { path: fixture, timestampField: 'created_at' }))
      .append(typeCounts.create('type-counts'))
      .append(ndjsonFileOutput.create('counts', { path: out, mode: 'truncate' }))
      .build()
      .run({ mode: 'inline', batchSize: 500 });
    const got = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as string)
      .sort();
    const want = [...perWindow].map(([id, n]) => `${id} ${n}`).sort();
    expect(got).toEqual(want);
  });
});
