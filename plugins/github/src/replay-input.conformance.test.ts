// The GitHub replay input runs the testkit's source conformance suite: a bounded source over
// a folder of NDJSON event files, its position kept by the file checkpoint.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceConformanceSuite } from '@codefeedr/testkit';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cf-github-replay-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Event time of the n-th appended value: one second apart, so event-time order is append order. */
const BASE = Date.parse('2024-03-01T12:00:00Z');

// Both orders: event-time (a file read whole, sorted; position = file + index) and file
// (streaming; position = file + byte offset).
for (const order of ['event-time', 'file'] as const)
  sourceConformanceSuite({
    name: `github-replay (${order} order)`,
    input: { module: new URL('./index.ts', import.meta.url), export: 'replayInput' },
    target: async (testName) => {
      const folder = join(dir, `${order}-${testName}`);
      await mkdir(folder);
      let appended = 0;
      let files = 0;
      return {
        config: { paths: folder, order },
        // Each append is one more file of the folder (the replay reads them in name order); each
        // value a GitHub event carrying it in its payload, its key as the repository name.
        append: async (values) => {
          const lines = values.map((value) => {
            const n = appended++;
            return JSON.stringify({
              id: String(10_000_000_000 + n),
              type: 'WatchEvent',
              actor: { id: 1, login: 'testkit' },
              repo: { id: 1, name: value.key },
              payload: { action: 'started', testkit: value },
              public: true,
              created_at: new Date(BASE + n * 1_000).toISOString(),
            });
          });
          const name = `part-${String(files++).padStart(6, '0')}.ndjson`;
          await writeFile(join(folder, name), lines.map((line) => `${line}\n`).join(''));
        },
        drop: () => rm(folder, { recursive: true, force: true }),
      };
    },
    bounded: true,
    idOf: (event) => (event as { payload: { testkit: { id: string } } }).payload.testkit.id,
  });
