import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ConfigError, silentLogger } from '@codefeedr/core';
import { openPostgresPool, postgresConnectionSchema } from '@codefeedr/plugin-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';
import {
  githubToPostgres,
  githubToPostgresBuilder,
  githubToPostgresPipeline,
} from './github-to-postgres-pipeline.js';

const url = process.env.CODEFEEDR_POSTGRES_URL;
if (!url)
  throw new Error(
    'CODEFEEDR_POSTGRES_URL is not set: run through vitest (its global setup starts PostgreSQL) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
const prefixes: string[] = [];
// The plugin's own pool: this package depends on the plugin, not on pg itself.
const { pool: client } = await openPostgresPool(postgresConnectionSchema.parse({ url }));
const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

afterAll(async () => {
  const { rows } = await client.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()',
  );
  for (const { table_name } of rows)
    if (prefixes.some((p) => table_name.startsWith(p)))
      await client.query(`DROP TABLE ${quote(table_name)}`);
  await client.end();
});

function prefix(name: string): string {
  const p = `t${run}_${name}_`;
  prefixes.push(p);
  return p;
}

/** Events per type, counted from the bundled gzip file itself. */
function countsByType(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of gunzipSync(readFileSync(BUNDLED_EVENTS)).toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    const { type } = JSON.parse(line) as { type: string };
    counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

/** Rows per (table, type) among the tables with `prefix`. */
async function storedCounts(prefix: string): Promise<Record<string, Record<string, number>>> {
  const { rows } = await client.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1',
  );
  const out: Record<string, Record<string, number>> = {};
  for (const { table_name } of rows) {
    if (!table_name.startsWith(prefix)) continue;
    const counts = await client.query<{ type: string; n: string }>(
      `SELECT type, count(*) AS n FROM ${quote(table_name)} GROUP BY type`,
    );
    out[table_name.slice(prefix.length)] = Object.fromEntries(
      counts.rows.map((r) => [r.type, Number(r.n)]),
    );
  }
  return out;
}

const UNTYPED = new Set(['GistEvent', 'FollowEvent', 'DownloadEvent', 'TeamAddEvent']);
const snake = (type: string) => `${type.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}s`;

describe('github-to-postgres', () => {
  const expected = countsByType();

  it('stores every bundled event in its type’s table, and a rerun writes no row again', async () => {
    const p = prefix('per_type');
    const summary = await githubToPostgresPipeline({ url, prefix: p }).run({
      mode: 'inline',
      logger: silentLogger,
    });
    expect(summary.status).toBe('finished');
    expect(summary.deadLetters).toEqual([]);

    const perTable: Record<string, Record<string, number>> = {};
    for (const [type, n] of Object.entries(expected)) {
      const table = UNTYPED.has(type) ? 'other_events' : snake(type);
      (perTable[table] ??= {})[type] = n;
    }
    expect(await storedCounts(p)).toEqual(perTable);

    // The table is derived from the message type: id is the primary key, scalars typed.
    const { rows: columns } = await client.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
      [`${p}push_events`],
    );
    expect(Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]))).toMatchObject({
      id: 'text',
      type: 'text',
      payload: 'jsonb',
      public: 'boolean',
      created_at: 'timestamp with time zone',
    });

    // Upserts by event id leave unchanged rows alone: no row gets a new version (xmin).
    const versions = async () =>
      (
        await client.query<{ v: string }>(
          `SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) AS v FROM ${quote(`${p}push_events`)}`,
        )
      ).rows[0]!.v;
    const before = await versions();
    const again = await githubToPostgres.create({ url, prefix: p });
    await again.run({ mode: 'inline', logger: silentLogger });
    expect(await storedCounts(p)).toEqual(perTable);
    expect(await versions()).toBe(before);
  });

  it('puts every event in one table with a type column in the single layout', async () => {
    const p = prefix('single');
    await githubToPostgresBuilder({ url, prefix: p, layout: 'single' })
      .build()
      .run({ mode: 'inline', logger: silentLogger });
    expect(await storedCounts(p)).toEqual({ events: expected });
  });

  it('takes the URL from DATABASE_URL when none is given', () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://someone:s3cret-pw@db.example:6543/events';
    try {
      const stage = githubToPostgresPipeline().stages.find((s) => s.id === 'store-push-events')!;
      expect((stage.config as { url: string }).url).toBe(process.env.DATABASE_URL);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });

  it('refuses bad settings up front, all at once, without echoing the URL', () => {
    let error: unknown;
    try {
      githubToPostgresPipeline({
        url: 'postgres://u:hunter2-secret@h/db',
        prefix: 'bad prefix;',
        layout: 'sideways' as 'single',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/prefix/);
    expect(message).toMatch(/layout/);
    expect(message).not.toContain('hunter2-secret');
  });

  it('names a stage per type, from one events input', () => {
    const ids = githubToPostgresPipeline({ url }).stages.map((s) => s.id);
    expect(ids[0]).toBe('events');
    expect(ids).toContain('push-events');
    expect(ids).toContain('store-push-events');
    expect(ids).toContain('other-events');
    expect(ids).toContain('store-other-events');
    // One input, 15 typed transforms + the untyped rest, one output each.
    expect(ids.length).toBe(1 + 2 * 16);
  });
});
