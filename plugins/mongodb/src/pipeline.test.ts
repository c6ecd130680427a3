import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@codefeedr/core';
import {
  checkPipeline,
  discoverPlugins,
  loadPipeline,
  parsePipelineText,
} from '@codefeedr/registry';
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoUrl, rawMongo, uniqueDatabase } from './mongo-test-support.js';

// The catalog imports the plugin as installed (dist/): `npm test` builds first, as a user's install would be.
const repoRoot = new URL('../../..', import.meta.url).pathname;
const database = uniqueDatabase('pipeline');
const dir = mkdtempSync(join(tmpdir(), 'codefeedr-mongodb-pipeline-'));
let raw: MongoClient;

beforeAll(async () => {
  raw = await rawMongo();
});

afterAll(async () => {
  await raw.db(database).dropDatabase();
  await raw.close();
  rmSync(dir, { recursive: true, force: true });
});

async function runFile(text: string, env: Record<string, string>) {
  const catalog = discoverPlugins(repoRoot);
  const spec = parsePipelineText(text, 'pipeline.yaml', { env });
  const pipeline = await loadPipeline(spec, catalog, checkPipeline(spec, catalog));
  return pipeline.run({ mode: 'inline', logger: silentLogger, batchSize: 100 });
}

describe('pipeline files with the MongoDB components', () => {
  it('writes a file into a collection (upsert by key, replayed) and reads it back', async () => {
    const input = join(dir, 'events.ndjson');
    const lines = Array.from({ length: 345 }, (_, i) =>
      JSON.stringify({ id: `e-${i % 300}`, repo: `repo-${i % 7}`, n: i }),
    );
    writeFileSync(input, `${lines.join('\n')}\n`);
    const distinct = new Set(lines.map((l) => (JSON.parse(l) as { id: string }).id));
    const env = { EVENTS: input, MONGODB_URL: mongoUrl(), OUT: join(dir, 'out.ndjson') };

    const store = [
      'name: store-events',
      'stages:',
      '  - { id: events, use: ndjson-file, with: { path: "${EVENTS}", keyField: id } }',
      `  - { id: store, use: "@codefeedr/plugin-mongodb:output", from: events, with: { url: "\${MONGODB_URL}", database: ${database}, collection: events } }`,
    ].join('\n');
    const first = await runFile(store, env);
    expect(first.status).toBe('finished');
    await runFile(store, env); // the same file again: upserts, no duplicates
    const collection = raw.db(database).collection('events');
    expect(await collection.countDocuments()).toBe(distinct.size);
    expect(await collection.findOne({ _id: 'e-0' as never })).toMatchObject({ n: 300 }); // the last line of e-0 won

    const readBack = [
      'name: read-events',
      'stages:',
      `  - { id: stored, use: "@codefeedr/plugin-mongodb:input", with: { url: "\${MONGODB_URL}", database: ${database}, collection: events } }`,
      '  - { id: out, use: ndjson-file, from: stored, with: { path: "${OUT}", mode: truncate } }',
    ].join('\n');
    const second = await runFile(readBack, env);
    expect(second.status).toBe('finished');
    const out = readFileSync(env.OUT, 'utf8').split('\n').filter(Boolean);
    expect(new Set(out.map((l) => (JSON.parse(l) as { _id: string })._id))).toEqual(distinct);
  });

  it('reports a bad stage config located in the file, before anything runs', async () => {
    const error = await runFile(
      [
        'name: bad',
        'stages:',
        '  - { id: n, use: sequence, with: { to: 3 } }',
        '  - { id: store, use: "@codefeedr/plugin-mongodb:output", from: n, with: { mode: sideways } }',
      ].join('\n'),
      {},
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PIPELINE_INVALID' });
    expect((error as Error).message).toMatch(/pipeline\.yaml:4/);
  });
});
