// The runtime's side of stored positions, with the real output: an append-only table fed
// through a buffer, a first run that fails before the group commits anything, a second run
// that re-reads every partition from the start. Every number must be in the table exactly
// once — counted here with plain SQL against 1..N.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBuffer, PipelineBuilder, sequenceInput, silentLogger } from '@codefeedr/core';
import type { Sink } from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresOutput } from './postgres-output.js';
import { dropTables, postgresUrl, uniqueTable, withClient } from './postgres-test-support.js';

const table = uniqueTable('rt_pos');
const positionsTable = uniqueTable('rt_pos_p');
const TOTAL = 4_000;
const dirs: string[] = [];
afterAll(async () => {
  await dropTables(table, positionsTable);
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

class GoneForGood extends Error {}

describe('postgres output with storePositions, through the runtime', () => {
  it('append mode: a failed run and a rerun store every record exactly once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-pg-positions-'));
    dirs.push(dir);
    const buffer = new MemoryBuffer(); // outlives both runs, as Kafka would
    const save = postgresOutput.create('save', {
      url: postgresUrl(),
      table,
      mode: 'append',
      storePositions: true,
      positionsTable,
      columns: { n: { from: '$value', type: 'bigint' } },
    });
    // The real sink, failing for good after `failAfter` writes (a crash after a commit).
    const failingAfter = (failAfter: number): typeof save => ({
      ...save,
      async createSink(ctx): Promise<Sink<unknown>> {
        const sink: Sink<unknown> = await save.createSink(ctx);
        let writes = 0;
        return {
          write(batch, positions) {
            if (++writes > failAfter) throw new GoneForGood('the database went away for good');
            return sink.write(batch, positions);
          },
          flush: () => sink.flush(),
          close: () => sink.close(),
          positions: () => sink.positions!(),
        };
      },
    });
    const run = (failAfter: number, batchSize: number) =>
      new PipelineBuilder('pg-positions')
        .append(sequenceInput.create('numbers', { from: 1, to: TOTAL }))
        .append(failingAfter(failAfter))
        .setStageOptions('numbers', { partitions: 3 })
        .setBuffer(buffer)
        .build()
        .run({
          mode: 'local',
          checkpointDir: dir,
          // No checkpoint, so no group commit, before the first run fails.
          checkpointIntervalMs: 3_600_000,
          batchSize,
          logger: silentLogger,
        });
    const first = await run(12, 100).then(
      (summary) => summary.status,
      (error: unknown) => (error as Error).message,
    );
    expect(first).not.toBe('finished');
    const written = await withClient(
      async (c) =>
        (await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`)).rows[0]!.n,
    );
    // Some, not all: a write is one partition's share of a poll.
    expect(Number(written)).toBeGreaterThan(0);
    expect(Number(written)).toBeLessThan(TOTAL);
    // Other batch boundaries: replayed batches straddle the stored positions, so only the
    // runtime's skip (not the sink's own check of whole batches) keeps them out.
    expect((await run(Infinity, 70)).status).toBe('finished');
    const rows = await withClient(
      async (c) =>
        (
          await c.query<{ n: string; copies: string }>(
            `SELECT n, count(*) AS copies FROM "${table}" GROUP BY n ORDER BY n::bigint`,
          )
        ).rows,
    );
    expect(rows.filter((r) => r.copies !== '1')).toEqual([]);
    expect(rows.map((r) => Number(r.n))).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
  }, 120_000);
});
