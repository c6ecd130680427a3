// A sink that stores its input positions with its records (Sink.positions) resumes from them:
// after a run that fails before the group committed anything, the next run re-reads every
// partition from the start, and the runtime must hand the sink no record it already stored.
// Checked against 1..N itself: an append-only store ends with every number exactly once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compareOffsets } from './buffer-edge.js';
import { defineOutput } from './component.js';
import { silentLogger } from './console-logger.js';
import { MemoryBuffer } from './memory-buffer.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { StreamRecord } from './record.js';
import { SequenceNumber, sequenceInput } from './sequence-input.js';
import type { Sink } from './sink.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** What an append-only table with a positions table holds; outlives the runs. */
interface Table {
  rows: number[];
  positions: Record<string, string>;
}

/** Appends rows and stores positions in one step (one transaction); fails after `failAfter` writes. */
class AppendStore implements Sink<number> {
  private writes = 0;
  constructor(
    private readonly table: Table,
    private readonly storesPositions: boolean,
    private readonly failAfter = Infinity,
  ) {}
  write(batch: readonly StreamRecord<number>[], positions?: Readonly<Record<string, string>>) {
    if (++this.writes > this.failAfter) throw new Error('the database went away for good');
    this.table.rows.push(...batch.map((r) => r.value));
    if (this.storesPositions && positions !== undefined)
      Object.assign(this.table.positions, positions);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  get positions(): (() => Promise<Record<string, string> | undefined>) | undefined {
    return this.storesPositions ? async () => ({ ...this.table.positions }) : undefined;
  }
}

async function runTwice(storesPositions: boolean, total: number): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'cf-sink-positions-'));
  dirs.push(dir);
  const buffer = new MemoryBuffer(); // outlives both runs, as Kafka would
  const table: Table = { rows: [], positions: {} };
  const run = (failAfter: number) =>
    new PipelineBuilder(`sink-positions-${String(storesPositions)}`)
      .append(sequenceInput.create('numbers', { from: 1, to: total }))
      .append(
        defineOutput({
          name: 'append',
          description: 'append-only store',
          configSchema: z.object({}),
          inputTypes: [SequenceNumber] as const,
          createSink: () => new AppendStore(table, storesPositions, failAfter),
        }).create('out'),
      )
      .setStageOptions('numbers', { partitions: 3 })
      .setBuffer(buffer)
      .build()
      .run({
        mode: 'local',
        checkpointDir: dir,
        // No checkpoint (and so no group commit) before the first run fails.
        checkpointIntervalMs: 3_600_000,
        batchSize: 50,
        logger: silentLogger,
      });
  const failed = await run(8).then(
    (summary) => summary.status,
    (error: unknown) => (error as Error).message,
  );
  expect(failed).not.toBe('finished');
  expect(table.rows.length).toBeGreaterThan(0);
  expect((await run(Infinity)).status).toBe('finished');
  return table.rows;
}

describe('a sink that stores its positions', () => {
  it('gets no record twice after a failed run, even append-only, and loses none', async () => {
    const total = 3_000;
    const rows = await runTwice(true, total);
    expect(rows.length).toBe(total);
    expect([...rows].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('without positions, the same runs append the replayed records again (at-least-once)', async () => {
    const rows = await runTwice(false, 3_000);
    expect(new Set(rows).size).toBe(3_000);
    expect(rows.length).toBeGreaterThan(3_000);
  });

  it('orders Kafka offsets and Redis stream ids, and nothing else', () => {
    expect(compareOffsets('9', '10')).toBe(-1);
    expect(compareOffsets('10', '10')).toBe(0);
    expect(compareOffsets('1700000000000-2', '1700000000000-10')).toBe(-1);
    expect(compareOffsets('1700000000001-0', '1700000000000-10')).toBe(1);
    expect(compareOffsets('5', '1700000000000-0')).toBeUndefined();
    expect(compareOffsets('abc', '1')).toBeUndefined();
  });
});
