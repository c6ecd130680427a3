import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { silentLogger } from '@codefeedr/core';
import { gitHubEventTypeNames } from '@codefeedr/plugin-github';
import { mongoConnectionConfigSchema, openMongo } from '@codefeedr/plugin-mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';
import { githubToMongo, githubToMongoPipeline } from './github-to-mongo-pipeline.js';

const url = process.env.CODEFEEDR_MONGODB_URL;
if (!url)
  throw new Error(
    'CODEFEEDR_MONGODB_URL is not set: run through vitest (its global setup starts FerretDB) or `npm run services:up`.',
  );

const database = `t_${randomBytes(4).toString('hex')}_github_to_mongo`;
const dir = mkdtempSync(join(tmpdir(), 'cf-github-to-mongo-'));
const connection = await openMongo(mongoConnectionConfigSchema.parse({ url, database }));
afterAll(async () => {
  await connection.db.dropDatabase();
  await connection.client.close();
  rmSync(dir, { recursive: true, force: true });
});

// FerretDB 1.24 (SQLite) scans a collection for every upsert, so the full 10,557 events take
// minutes; the e2e test does that. Here: the first 600 bundled events plus every event of a
// type without a typed transform, written as an NDJSON file the replay reads.
const lines = gunzipSync(readFileSync(BUNDLED_EVENTS))
  .toString('utf8')
  .split('\n')
  .filter((line) => line.trim() !== '');
const UNTYPED = new Set(['GistEvent', 'FollowEvent', 'DownloadEvent', 'TeamAddEvent']);
const chosen = lines.filter(
  (line, i) => i < 600 || UNTYPED.has((JSON.parse(line) as { type: string }).type),
);
const file = join(dir, 'events.ndjson');
writeFileSync(file, `${chosen.join('\n')}\n`);

const snake = (type: string) => `${type.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}s`;

/** Event ids per store, computed from the chosen lines (every store exists, empty or not). */
function expectedStores(): Record<string, string[]> {
  const out: Record<string, string[]> = { other_events: [] };
  for (const type of gitHubEventTypeNames) out[snake(type)] = [];
  for (const line of chosen) {
    const { id, type } = JSON.parse(line) as { id: string; type: string };
    out[UNTYPED.has(type) ? 'other_events' : snake(type)]!.push(id);
  }
  for (const ids of Object.values(out)) ids.sort();
  return out;
}

async function stored(prefix: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const { name } of await connection.db.listCollections({}, { nameOnly: true }).toArray()) {
    if (!name.startsWith(prefix)) continue;
    const docs = await connection.db
      .collection<{ _id: string; id: string }>(name)
      .find({}, { projection: { _id: 1, id: 1 } })
      .toArray();
    for (const doc of docs) expect(doc._id).toBe(doc.id);
    out[name.slice(prefix.length)] = docs.map((d) => d._id).sort();
  }
  return out;
}

describe('github-to-mongo', () => {
  it('stores each event once in its type’s collection, _id = event id, also on a rerun', async () => {
    const options = { url, database, prefix: 'per_type_', paths: file };
    const summary = await githubToMongoPipeline(options).run({
      mode: 'inline',
      logger: silentLogger,
    });
    expect(summary.status).toBe('finished');
    expect(summary.deadLetters).toEqual([]);
    const expected = expectedStores();
    expect(Object.keys(expected)).toContain('other_events');
    expect(await stored('per_type_')).toEqual(expected);

    // The registry component, run again: upserts by _id, still one document per event.
    const again = await githubToMongo.create(options);
    await again.run({ mode: 'inline', logger: silentLogger });
    expect(await stored('per_type_')).toEqual(expected);

    const push = await connection.db
      .collection('per_type_push_events')
      .findOne({ type: 'PushEvent' });
    expect(push).toMatchObject({ type: 'PushEvent', payload: { ref: expect.any(String) } });
  }, 300_000);

  it('puts every event in one collection with its type in the single layout', async () => {
    await githubToMongoPipeline({
      url,
      database,
      prefix: 'single_',
      paths: file,
      layout: 'single',
    }).run({ mode: 'inline', logger: silentLogger });
    const all = Object.values(expectedStores()).flat().sort();
    expect(await stored('single_')).toEqual({ events: all });
    const types = await connection.db
      .collection('single_events')
      .aggregate<{ _id: string; n: number }>([{ $group: { _id: '$type', n: { $sum: 1 } } }])
      .toArray();
    const counts: Record<string, number> = {};
    for (const line of chosen) {
      const { type } = JSON.parse(line) as { type: string };
      counts[type] = (counts[type] ?? 0) + 1;
    }
    expect(Object.fromEntries(types.map((t) => [t._id, t.n]))).toEqual(counts);
  }, 300_000);

  it('takes the URL from MONGODB_URL when none is given', () => {
    const saved = process.env.MONGODB_URL;
    process.env.MONGODB_URL = 'mongodb://someone:s3cret-pw@mongo.example:27017/';
    try {
      const stage = githubToMongoPipeline().stages.find((s) => s.id === 'store-watch-events')!;
      expect(stage.config).toMatchObject({
        url: process.env.MONGODB_URL,
        collection: 'github_watch_events',
        database: 'codefeedr',
      });
    } finally {
      if (saved === undefined) delete process.env.MONGODB_URL;
      else process.env.MONGODB_URL = saved;
    }
  });
});
