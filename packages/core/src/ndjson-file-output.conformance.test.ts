// Core's ndjson-file output runs the testkit's sink conformance suite: appending lines is not
// idempotent (a replay after a crash appends again), so it proves at-least-once.
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sinkConformanceSuite } from '@codefeedr/testkit';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cf-ndjson-output-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Lines per record key (`format: record` keeps the key); a line torn by a SIGKILL is no record. */
async function storedKeys(path: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const line of text.split('\n')) {
    let record: { key?: unknown };
    try {
      record = JSON.parse(line) as { key?: unknown };
    } catch {
      continue;
    }
    const key = String(record.key);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

sinkConformanceSuite({
  name: 'ndjson-file',
  output: { module: new URL('./index.ts', import.meta.url), export: 'ndjsonFileOutput' },
  target: async (testName) => {
    const path = join(dir, `${testName}.ndjson`);
    return {
      config: { path, format: 'record' },
      stored: () => storedKeys(path),
      drop: () => rm(path, { force: true }),
    };
  },
  idempotent: false,
});
