// Core's ndjson-file input runs the testkit's source conformance suite: a bounded source whose
// position (a byte offset) survives a SIGKILL through the file checkpoint store.
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sourceConformanceSuite } from '@codefeedr/testkit';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cf-ndjson-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

sourceConformanceSuite({
  name: 'ndjson-file',
  input: { module: new URL('./index.ts', import.meta.url), export: 'ndjsonFileInput' },
  target: async (testName) => {
    const path = join(dir, `${testName}.ndjson`);
    await writeFile(path, '');
    return {
      config: { path, keyField: 'key' },
      append: (values) => appendFile(path, values.map((v) => `${JSON.stringify(v)}\n`).join('')),
      drop: () => rm(path, { force: true }),
    };
  },
  bounded: true,
  idOf: (value) => (value as { id: string }).id,
});
