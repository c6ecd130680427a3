import { fileURLToPath } from 'node:url';
import { WorkerProcess } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTables, postgresUrl, uniqueTable, withClient } from './postgres-test-support.js';

const table = uniqueTable('crash');
const positionsTable = uniqueTable('crash_pos');
const TOTAL = 6_000;
const BATCH = 150;

afterAll(async () => {
  await dropTables(table, positionsTable);
});

function start(): WorkerProcess {
  return new WorkerProcess({
    script: fileURLToPath(new URL('./positions-crash-child.ts', import.meta.url)),
    args: [postgresUrl(), table, positionsTable, String(TOTAL), String(BATCH)],
  });
}

describe('stored positions through crashes', () => {
  it('append mode, SIGKILLed mid-batch 3 times and resumed from sink.positions(): every row exactly once', async () => {
    const resumedAt: number[] = [];
    for (const killAfter of [1_200, 2_700, 4_500]) {
      const child = start();
      const resumed = await child.waitForEvent((e) => e.event === 'resumed', 30_000, 'resume');
      resumedAt.push(resumed['offset'] as number);
      await child.waitForEvent(
        (e) => e.event === 'batch' && (e['offset'] as number) >= killAfter,
        30_000,
        `a batch past ${killAfter}`,
      );
      child.kill('SIGKILL'); // the next batch's transaction is in flight or about to be
      await child.exited;
    }
    const last = start();
    await last.waitForEvent((e) => e.event === 'done', 60_000, 'the end');
    // Every restart resumed where the committed rows end, never before and never from 0.
    expect(resumedAt[0]).toBe(0);
    for (const offset of resumedAt.slice(1))
      expect(offset % BATCH === 0 || offset === TOTAL).toBe(true);
    const { rows } = await withClient((c) =>
      c.query<{ n: number; copies: string }>(
        `SELECT n, count(*) AS copies FROM "${table}" GROUP BY n ORDER BY n`,
      ),
    );
    expect(rows.length).toBe(TOTAL);
    expect(rows.filter((r) => Number(r.copies) !== 1)).toEqual([]);
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
  });
});
