// Proves the harness's PostgreSQL runs real transactions through pg: a committed insert
// is visible to another connection, an uncommitted one is not, a rolled-back one never is.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireEnv, runId } from './env.ts';

describe('PostgreSQL transactions (pg)', () => {
  const url = requireEnv('CODEFEEDR_POSTGRES_URL');
  const table = `proof_${runId()}`;
  const writer = new pg.Client({ connectionString: url });
  const reader = new pg.Client({ connectionString: url });

  const visible = async (): Promise<string[]> =>
    (await reader.query<{ note: string }>(`SELECT note FROM ${table} ORDER BY id`)).rows.map(
      (r) => r.note,
    );

  beforeAll(async () => {
    await writer.connect();
    await reader.connect();
    await writer.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, note text NOT NULL)`);
  });

  afterAll(async () => {
    await writer.query(`DROP TABLE IF EXISTS ${table}`);
    await writer.end();
    await reader.end();
  });

  it('makes a committed insert visible and a rolled-back insert invisible', async () => {
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO ${table} (note) VALUES ($1)`, ['committed']);
    expect(await visible()).toEqual([]); // not yet committed: isolated from the reader
    await writer.query('COMMIT');
    expect(await visible()).toEqual(['committed']);

    await writer.query('BEGIN');
    await writer.query(`INSERT INTO ${table} (note) VALUES ($1)`, ['rolled back']);
    expect((await writer.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]).toEqual({
      n: 2,
    });
    await writer.query('ROLLBACK');

    expect(await visible()).toEqual(['committed']);
    expect((await writer.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]).toEqual({
      n: 1,
    });
  });
});
