// Split runs (RunOptions.splits): parallel stages in worker threads, the rest in the main thread
// with one channel per split. The worker threads run core's build (npm run build first).
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PipelineBuilder } from './pipeline-builder.js';
import { sequenceInput } from './sequence-input.js';
import { printerOutput } from './printer-output.js';
import {
  collected,
  hooks,
  splitFixturePipeline,
  writes,
  type SplitFixtureConfig,
} from './split-run.fixture.js';

function config(dir: string, overrides: Partial<SplitFixtureConfig> = {}): SplitFixtureConfig {
  return {
    to: 2_000,
    slowSplitDelayMs: 0,
    failEvery: 0,
    output: join(dir, 'numbers.ndjson'),
    failingSplit: -1,
    emptySplit: -1,
    ...overrides,
  };
}

/** The windows every number 1..to falls in, computed here (not by the pipeline). */
function expectedWindows(to: number, refused: (n: number) => boolean) {
  const byStart = new Map<number, { start: number; count: number; sum: number }>();
  for (let n = 1; n <= to; n++) {
    if (refused(n)) continue;
    const start = Math.floor((n * 1000) / 10_000) * 10_000;
    const w = byStart.get(start) ?? { start, count: 0, sum: 0 };
    w.count++;
    w.sum += n;
    byStart.set(start, w);
  }
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}

const quiet = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return quiet;
  },
};

describe('split runs', () => {
  it('merges the splits on event time: a slow split holds the watermark back, so no number is late', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    collected.length = 0;
    const c = config(dir, { slowSplitDelayMs: 5 });
    const summary = await splitFixturePipeline(c).run({ splits: 2, logger: quiet });
    const got = [...collected].sort((a, b) => a.start - b.start);
    // A late number would be a row with start -1; windows fired early would be split in two.
    expect(got).toEqual(expectedWindows(c.to, () => false));
    // Each split wrote its own file, together every number once.
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['numbers.split-0.ndjson', 'numbers.split-1.ndjson']);
    const written = files
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n'))
      .map(Number)
      .sort((a, b) => a - b);
    expect(written).toEqual(Array.from({ length: c.to }, (_, i) => i + 1));
    // The threads' metrics are the run's: every number counted once, in the parallel stages.
    const stage = (id: string) => summary.metrics.stages.find((s) => s.stage === id)!;
    expect(stage('numbers').recordsOut).toBe(c.to);
    expect(stage('checked').recordsIn).toBe(c.to);
    expect(stage('ndjson').recordsOut).toBe(c.to);
  });

  it('a split that has ended stops holding the watermark back: the windows fire as the other split goes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    collected.length = 0;
    writes.count = 0;
    // Split 0 is empty and ends at once; split 1 sends its numbers slowly, 50 at a time.
    const c = config(dir, { emptySplit: 0, slowSplitDelayMs: 2 });
    await splitFixturePipeline(c).run({ splits: 2, logger: quiet });
    const odd = (n: number) => n % 2 === 0; // split 1 of 2 reads the odd numbers
    expect([...collected].sort((a, b) => a.start - b.start)).toEqual(expectedWindows(c.to, odd));
    // Held back by the ended split, every window would fire at the end, in one write.
    expect(writes.count).toBeGreaterThan(10);
  });

  it("the threads' dead letters go to the run's one destination", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    collected.length = 0;
    const c = config(dir, { failEvery: 7 });
    const pipeline = splitFixturePipeline(c);
    const dlq = join(dir, 'dead');
    pipeline.definition.deadLetter.dir = dlq;
    const summary = await pipeline.run({ splits: 2, logger: quiet });
    const got = [...collected].sort((a, b) => a.start - b.start);
    expect(got).toEqual(expectedWindows(c.to, (n) => n % 7 === 0));
    const letters = readFileSync(join(dlq, 'checked.dlq.ndjson'), 'utf8').trim().split('\n');
    const values = letters
      .map((l) => (JSON.parse(l) as { original: { value: number } }).original.value)
      .sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: Math.floor(c.to / 7) }, (_, i) => (i + 1) * 7));
    expect(summary.deadLetters).toEqual([
      { stage: 'checked', count: Math.floor(c.to / 7), location: join(dlq, 'checked.dlq.ndjson') },
    ]);
  });

  it('a failing split fails the run with its error, named by split', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    const run = splitFixturePipeline(config(dir, { failingSplit: 1 })).run({
      splits: 2,
      logger: quiet,
      ioRetries: 0,
    });
    await expect(run).rejects.toThrow(/Split 1: .*split 1 cannot read its numbers/);
  });

  it('a record that cannot cross threads fails the run, naming the output and what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    const run = splitFixturePipeline(config(dir, { uncloneable: true })).run({
      splits: 2,
      logger: quiet,
    });
    await expect(run).rejects.toThrow(
      /Split 1: [\s\S]*Records of "checked" cannot cross from a split's worker thread to the main thread: [\s\S]*must be plain data/,
    );
  });

  it('a stop ends the threads too: the run resolves as stopped, its files hold whole lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    collected.length = 0;
    const stop = new AbortController();
    hooks.written = () => stop.abort(); // at the first window the main thread writes
    try {
      const c = config(dir, { to: 1_000_000, slowSplitDelayMs: 1 });
      const summary = await splitFixturePipeline(c).run({
        splits: 2,
        logger: quiet,
        signal: stop.signal,
      });
      expect(summary.status).toBe('stopped');
      for (const f of readdirSync(dir)) {
        const text = readFileSync(join(dir, f), 'utf8');
        expect(text === '' || text.endsWith('\n')).toBe(true);
        expect(text.split('\n').filter(Boolean).length).toBeLessThan(c.to / 2);
      }
    } finally {
      hooks.written = () => {};
    }
  });

  it('without splits the same pipeline runs in one thread, into one file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    collected.length = 0;
    const c = config(dir);
    await splitFixturePipeline(c).run({ logger: quiet });
    expect([...collected].sort((a, b) => a.start - b.start)).toEqual(
      expectedWindows(c.to, () => false),
    );
    expect(readdirSync(dir)).toEqual(['numbers.ndjson']);
  });

  it('refuses what a split run cannot do, before anything starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'split-run-'));
    const pipeline = splitFixturePipeline(config(dir));
    await expect(pipeline.run({ splits: 2, mode: 'local' })).rejects.toMatchObject({
      code: 'RUN_OPTIONS_INVALID',
      message: expect.stringMatching(/splits are for inline runs/),
    });
    await expect(pipeline.run({ splits: 2, checkpointDir: join(dir, 'cp') })).rejects.toMatchObject(
      {
        code: 'RUN_OPTIONS_INVALID',
        message: expect.stringMatching(/keeps no checkpoints/),
      },
    );
    // No factory, a source that cannot split, a parallel stage fed by the main thread.
    const plain = new PipelineBuilder('plain')
      .append(sequenceInput.create('numbers', { from: 1, to: 3 }))
      .append(printerOutput.create('print', {}))
      .setStageOptions('numbers', { parallel: true })
      .build();
    const refused = plain.run({ splits: 2 });
    await expect(refused).rejects.toMatchObject({ code: 'RUN_OPTIONS_INVALID' });
    const message = await refused.catch((e: Error) => e.message);
    expect(message).toMatch(/has no factory: call setFactory/);
    expect(message).toMatch(/input stage "numbers" is parallel but its source cannot read a share/);
    const backwards = new PipelineBuilder('backwards')
      .setFactory({ module: 'x', export: 'y' })
      .append(sequenceInput.create('numbers', { from: 1, to: 3 }))
      .append(printerOutput.create('print', {}))
      .setStageOptions('print', { parallel: true })
      .build();
    await expect(backwards.run({ splits: 2 })).rejects.toThrow(
      /stage "print" is parallel but its parent "numbers" is not/,
    );
  });
});
