import type { StreamRecord } from '@codefeedr/core';
import { waitFor } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PostgresInputColumnError,
  PostgresOrderValueNullError,
  PostgresPositionInvalidError,
} from './errors.js';
import { PostgresInputSource, postgresInput, postgresInputConfigSchema } from './postgres-input.js';
import { dropTables, postgresUrl, uniqueTable, withClient } from './postgres-test-support.js';

const created: string[] = [];
const signal = new AbortController().signal;

afterAll(async () => {
  await dropTables(...created);
});

async function table(prefix: string, ddl: string, fill?: string): Promise<string> {
  const name = uniqueTable(prefix);
  created.push(name);
  await withClient(async (c) => {
    await c.query(`CREATE TABLE "${name}" ${ddl}`);
    if (fill !== undefined) await c.query(fill.replaceAll('$table', `"${name}"`));
  });
  return name;
}

async function open(config: Record<string, unknown>): Promise<PostgresInputSource> {
  return PostgresInputSource.open(
    postgresInputConfigSchema.parse({ url: postgresUrl(), ...config }),
  );
}

/** Polls until the source ends (bounded), collecting every record. */
async function drain(
  source: PostgresInputSource,
  max = 100,
): Promise<StreamRecord<Record<string, unknown>>[]> {
  const out: StreamRecord<Record<string, unknown>>[] = [];
  for (;;) {
    const batch = await source.poll(max, signal);
    if (batch === null) return out;
    out.push(...batch);
  }
}

async function count(name: string): Promise<number> {
  return withClient(async (c) =>
    Number((await c.query(`SELECT count(*) AS n FROM "${name}"`)).rows[0].n),
  );
}

describe('postgresInput', () => {
  it('reads a whole table once in order, in batches, then ends (bounded)', async () => {
    const name = await table(
      'read',
      '(id bigserial PRIMARY KEY, repo text, payload jsonb, at timestamptz)',
      `INSERT INTO $table (repo, payload, at) SELECT 'r' || (g % 7), jsonb_build_object('g', g), timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, 1234) g`,
    );
    const source = await open({ table: name, orderBy: 'id', key: 'repo', timestampColumn: 'at' });
    try {
      const records = await drain(source, 100);
      const total = await count(name);
      expect(records.length).toBe(total);
      expect(records.map((r) => r.value['id'])).toEqual(
        Array.from({ length: total }, (_, i) => i + 1),
      );
      const first = records[0]!;
      expect(first.key).toBe('r1');
      expect(first.value).toEqual({
        id: 1,
        repo: 'r1',
        payload: { g: 1 },
        at: '2024-01-01 00:00:01+00',
      });
      expect(first.timestamp).toBe(Date.parse('2024-01-01T00:00:01Z'));
      expect(await source.poll(100, signal)).toBeNull();
    } finally {
      await source.close();
    }
  });

  it('resumes from a position on a new source: nothing skipped, nothing read twice', async () => {
    const name = await table(
      'resume',
      '(id integer PRIMARY KEY, v text)',
      `INSERT INTO $table SELECT g, 'v' || g FROM generate_series(1, 500) g`,
    );
    const first = await open({ table: name, orderBy: 'id' });
    const seen: unknown[] = [];
    let position;
    try {
      for (let i = 0; i < 3; i++)
        seen.push(...(await first.poll(70, signal))!.map((r) => r.value['id']));
      position = JSON.parse(JSON.stringify(first.position())); // as a checkpoint store keeps it
    } finally {
      await first.close();
    }
    const second = await open({ table: name, orderBy: 'id' });
    try {
      await second.restore(position);
      seen.push(...(await drain(second, 70)).map((r) => r.value['id']));
    } finally {
      await second.close();
    }
    expect(seen).toEqual(Array.from({ length: await count(name) }, (_, i) => i + 1));
  });

  it('resumes across ties in a non-unique column when orderBy ends with a unique one', async () => {
    const name = await table(
      'ties',
      '(id integer PRIMARY KEY, updated_at timestamptz NOT NULL)',
      // 10 rows per microsecond-precise timestamp: batch boundaries fall inside ties.
      `INSERT INTO $table SELECT g, timestamptz '2024-01-01 00:00:00.000001' + (g / 10) * interval '1 microsecond' FROM generate_series(1, 300) g`,
    );
    const ids: unknown[] = [];
    let position: unknown = { after: null };
    for (;;) {
      const source = await open({ table: name, orderBy: ['updated_at', 'id'], batchSize: 7 });
      try {
        await source.restore(position as never);
        const batch = await source.poll(7, signal);
        if (batch === null) break;
        ids.push(...batch.map((r) => r.value['id']));
        position = source.position();
      } finally {
        await source.close();
      }
    }
    const expected = await withClient(async (c) =>
      (await c.query(`SELECT id FROM "${name}" ORDER BY updated_at, id`)).rows.map((r) => r.id),
    );
    expect(ids).toEqual(expected);
  });

  it('reads a query, and follow mode picks up rows inserted later', async () => {
    const name = await table('follow', '(id bigserial PRIMARY KEY, kind text, n integer)');
    const source = await open({
      query: `SELECT id, n FROM "${name}" WHERE kind = 'keep'`,
      orderBy: 'id',
      mode: 'follow',
      pollIntervalMs: 20,
    });
    try {
      expect(await source.poll(100, signal)).toEqual([]); // nothing yet, and not the end
      await withClient((c) =>
        c.query(
          `INSERT INTO "${name}" (kind, n) SELECT CASE WHEN g % 3 = 0 THEN 'drop' ELSE 'keep' END, g FROM generate_series(1, 90) g`,
        ),
      );
      const expected = await withClient(async (c) =>
        Number(
          (await c.query(`SELECT count(*) AS n FROM "${name}" WHERE kind = 'keep'`)).rows[0].n,
        ),
      );
      const got: number[] = [];
      await waitFor(
        async () => {
          got.push(...(await source.poll(25, signal))!.map((r) => r.value['n'] as number));
          return got.length >= expected;
        },
        { description: 'the inserted rows' },
      );
      expect(got).toEqual(Array.from({ length: 90 }, (_, i) => i + 1).filter((g) => g % 3 !== 0));
      expect(await source.poll(100, signal)).toEqual([]);
    } finally {
      await source.close();
    }
  });

  it('stops at a NULL orderBy value without moving its position past undelivered rows', async () => {
    const name = await table(
      'nullorder',
      '(id integer PRIMARY KEY, at timestamptz)',
      `INSERT INTO $table VALUES (1, '2024-01-01'), (2, '2024-01-02'), (3, NULL)`,
    );
    // Bounded: found when it looks for the end, at startup.
    const atOpen = await open({ table: name, orderBy: ['at', 'id'] }).catch((e: unknown) => e);
    expect(atOpen).toBeInstanceOf(PostgresOrderValueNullError);
    const source = await open({ table: name, orderBy: ['at', 'id'], mode: 'follow' });
    try {
      const error = await source.poll(10, signal).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PostgresOrderValueNullError);
      expect((error as Error).message).toContain('"at"');
      expect(source.position()).toEqual({ after: null });
    } finally {
      await source.close();
    }
  });

  it('bounded: reads the rows there at start and ends, however much is written meanwhile', async () => {
    const name = await table(
      'snapshot',
      '(id bigserial PRIMARY KEY, n integer)',
      `INSERT INTO $table (n) SELECT g FROM generate_series(1, 250) g`,
    );
    const atStart = await count(name);
    const source = await open({ table: name, orderBy: 'id' });
    const read: number[] = [];
    try {
      for (;;) {
        const batch = await source.poll(50, signal);
        if (batch === null) break;
        read.push(...batch.map((r) => r.value['n'] as number));
        // A busy writer: more rows after every batch.
        await withClient((c) =>
          c.query(`INSERT INTO "${name}" (n) SELECT 0 FROM generate_series(1, 60)`),
        );
      }
    } finally {
      await source.close();
    }
    expect(read).toEqual(Array.from({ length: atStart }, (_, i) => i + 1));
    const empty = await table('empty', '(id integer PRIMARY KEY)');
    const none = await open({ table: empty, orderBy: 'id' });
    try {
      expect(await none.poll(10, signal)).toBeNull();
    } finally {
      await none.close();
    }
  });

  it('refuses a position it did not make, saying what it expected', async () => {
    const name = await table('badpos', '(id integer PRIMARY KEY)');
    const source = await open({ table: name, orderBy: ['id'] });
    try {
      expect(() => source.restore({ after: [1, 2] })).toThrow(PostgresPositionInvalidError);
      expect(() => source.restore({ offset: 3 })).toThrow(/orderBy/);
    } finally {
      await source.close();
    }
  });

  it('checks at startup that `key` and `timestampColumn` name real columns', async () => {
    const name = await table('cols', '(id integer PRIMARY KEY, at timestamptz)');
    const error = await open({ table: name, orderBy: 'id', key: 'repo' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresInputColumnError);
    expect((error as Error).message).toContain('`key` names column "repo"');
    const query = await open({
      query: `SELECT id FROM "${name}";`,
      orderBy: 'id',
      timestampColumn: 'at',
    }).catch((e: unknown) => e);
    expect(query).toBeInstanceOf(PostgresInputColumnError); // and the trailing semicolon was fine
    expect(await open({ table: name, orderBy: 'ts' }).catch((e: unknown) => e)).toBeInstanceOf(
      PostgresInputColumnError,
    );
  });

  it('needs exactly one of table and query', () => {
    expect(() => postgresInput.create('in', { orderBy: 'id' })).toThrow(
      /exactly one of `table` and `query`/,
    );
    expect(() =>
      postgresInput.create('in', { table: 't', query: 'SELECT 1', orderBy: 'id' }),
    ).toThrow(/exactly one/);
  });
});
