import {
  defineMessageType,
  isRetryable,
  silentLogger,
  z,
  type StreamRecord,
} from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PostgresRecordKeyMissingError,
  PostgresRecordRejectedError,
  PostgresRecordUnencodableError,
  PostgresTableLayoutError,
} from './errors.js';
import {
  PostgresOutputSink,
  postgresOutput,
  postgresOutputConfigSchema,
  postgresOutputFor,
  type PostgresOutputConfig,
} from './postgres-output.js';
import { dropTables, postgresUrl, uniqueTable, withClient } from './postgres-test-support.js';

const created: string[] = [];
const ctx = { stageId: 'out', pipelineName: 'output-test', logger: silentLogger };

afterAll(async () => {
  await dropTables(...created);
});

function table(prefix: string): string {
  const name = uniqueTable(prefix);
  created.push(name);
  return name;
}

function config(
  overrides: Partial<z.input<typeof postgresOutputConfigSchema>>,
): PostgresOutputConfig {
  return postgresOutputConfigSchema.parse({ url: postgresUrl(), ...overrides });
}

interface Event {
  id: string;
  n: number;
  text?: string;
}

/** `count` records over `keys` keys (`id` = key), `n` counting up across the whole list. */
function events(count: number, keys: number, start = 0): StreamRecord<Event>[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `k-${(start + i) % keys}`;
    return { key: id, value: { id, n: start + i }, timestamp: 1_700_000_000_000 + start + i };
  });
}

async function rows<R>(name: string, orderBy: string): Promise<R[]> {
  return withClient(
    async (client) =>
      (await client.query(`SELECT * FROM "${name}" ORDER BY ${orderBy}`)).rows as R[],
  );
}

describe('postgresOutput, upsert (the default)', () => {
  it('replaying batches writes nothing twice: one row per key, holding its last value', async () => {
    const name = table('upsert');
    const sink = await PostgresOutputSink.open<Event>(config({ table: name }), ctx);
    const records = events(1_000, 137);
    try {
      for (let i = 0; i < records.length; i += 250) await sink.write(records.slice(i, i + 250));
      // A crash before the checkpoint replays from an earlier position: everything again.
      for (let i = 0; i < records.length; i += 300) await sink.write(records.slice(i, i + 300));
      await sink.flush();
    } finally {
      await sink.close();
    }
    const lastByKey = new Map<string, number>();
    for (const r of records) lastByKey.set(r.key!, r.value.n);
    const stored = await rows<{ record_key: string; value: Event }>(name, 'record_key');
    expect(stored.length).toBe(lastByKey.size);
    expect(new Map(stored.map((r) => [r.record_key, r.value.n]))).toEqual(lastByKey);
  });

  it('leaves unchanged rows alone on a replay (no new row versions) and updates changed ones', async () => {
    const name = table('nochange');
    const sink = await PostgresOutputSink.open<Event>(config({ table: name, key: 'id' }), ctx);
    const records = events(40, 40);
    const versions = () =>
      withClient(
        async (c) =>
          new Map(
            (await c.query(`SELECT id, xmin::text AS v FROM "${name}"`)).rows.map((r) => [
              r.id,
              r.v,
            ]),
          ),
      );
    try {
      await sink.write(records);
      const before = await versions();
      const changed = records.map((r, i) =>
        i % 4 === 0 ? { ...r, value: { ...r.value, text: 'new' } } : r,
      );
      await sink.write(changed);
      const after = await versions();
      const moved = [...after].filter(([id, v]) => before.get(id) !== v).map(([id]) => id);
      expect(moved.sort()).toEqual(
        changed
          .filter((_, i) => i % 4 === 0)
          .map((r) => r.value.id)
          .sort(),
      );
    } finally {
      await sink.close();
    }
  });

  it('upserts into a table whose columns have no equality (json), updating every conflict', async () => {
    const name = table('jsoncol');
    await withClient((c) => c.query(`CREATE TABLE "${name}" (id text PRIMARY KEY, doc json)`));
    const sink = await PostgresOutputSink.open<Event>(
      config({ table: name, key: 'id', columns: { id: 'id', doc: '$value' } }),
      ctx,
    );
    try {
      await sink.write(events(10, 5));
      await sink.write(events(10, 5, 10));
    } finally {
      await sink.close();
    }
    const stored = await rows<{ id: string; doc: Event }>(name, 'id');
    expect(stored.map((r) => r.doc.n)).toEqual([15, 16, 17, 18, 19]);
  });

  it('keeps the last record of a key that appears several times in one batch', async () => {
    const name = table('dupes');
    const sink = await PostgresOutputSink.open<Event>(config({ table: name, key: 'id' }), ctx);
    const batch = events(50, 3);
    try {
      expect(await sink.write(batch)).toBeUndefined();
    } finally {
      await sink.close();
    }
    const stored = await rows<{ id: string; value: Event }>(name, 'id');
    const expected = [...new Map(batch.map((r) => [r.value.id, r.value.n]))].sort();
    expect(stored.map((r) => [r.id, r.value.n])).toEqual(expected);
  });

  it('ignore mode keeps the first write of each key', async () => {
    const name = table('ignore');
    const sink = await PostgresOutputSink.open<Event>(
      config({ table: name, key: 'id', mode: 'ignore' }),
      ctx,
    );
    const records = events(90, 9);
    try {
      await sink.write(records.slice(0, 45));
      await sink.write(records.slice(45));
    } finally {
      await sink.close();
    }
    const firstByKey = new Map<string, number>();
    for (const r of records) if (!firstByKey.has(r.value.id)) firstByKey.set(r.value.id, r.value.n);
    const stored = await rows<{ id: string; value: Event }>(name, 'id');
    expect(new Map(stored.map((r) => [r.id, r.value.n]))).toEqual(firstByKey);
  });

  it('refuses an existing table without a unique index on the key, saying how to add one', async () => {
    const name = table('nounique');
    await withClient((c) => c.query(`CREATE TABLE "${name}" (id text, value jsonb)`));
    const error = await PostgresOutputSink.open(config({ table: name, key: 'id' }), ctx).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PostgresTableLayoutError);
    expect((error as Error).message).toContain(`ADD PRIMARY KEY ("id")`);
  });

  it('refuses an existing table missing a mapped column, naming the ALTER TABLE that adds it', async () => {
    const name = table('missingcol');
    await withClient((c) => c.query(`CREATE TABLE "${name}" (id text PRIMARY KEY)`));
    const error = await PostgresOutputSink.open(
      config({ table: name, key: 'id', columns: { id: 'id', n: { from: 'n', type: 'bigint' } } }),
      ctx,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresTableLayoutError);
    expect((error as Error).message).toContain(`ADD COLUMN "n" bigint`);
  });

  it('refuses a table with a NOT NULL column it would not write, instead of dead-lettering every row', async () => {
    const name = table('notnull');
    await withClient((c) =>
      c.query(`CREATE TABLE "${name}" (id text PRIMARY KEY, value jsonb, owner text NOT NULL)`),
    );
    const error = await PostgresOutputSink.open(config({ table: name, key: 'id' }), ctx).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PostgresTableLayoutError);
    expect((error as Error).message).toContain('"owner" is NOT NULL without a default');
  });
});

describe('postgresOutput, append', () => {
  it('copies every record straight into the table, duplicates of a key included', async () => {
    const name = table('append');
    const sink = await PostgresOutputSink.open<Event>(
      config({
        table: name,
        mode: 'append',
        columns: { id: 'id', n: { from: 'n', type: 'integer' } },
      }),
      ctx,
    );
    const records = events(777, 10);
    try {
      for (let i = 0; i < records.length; i += 100) await sink.write(records.slice(i, i + 100));
    } finally {
      await sink.close();
    }
    const stored = await rows<{ id: string; n: number }>(name, 'n');
    expect(stored.map((r) => r.n)).toEqual(records.map((r) => r.value.n));
    expect(stored.map((r) => r.id)).toEqual(records.map((r) => r.value.id));
  });
});

describe('postgresOutput tables', () => {
  it('creates the table from the message type: top-level scalars typed, the rest jsonb', async () => {
    const Push = defineMessageType(
      'test.Push',
      1,
      z.object({
        id: z.string(),
        size: z.number().int(),
        score: z.number(),
        public: z.boolean(),
        createdAt: z.string().datetime(),
        note: z.string().nullable(),
        repo: z.object({ name: z.string() }),
        tags: z.array(z.string()),
      }),
    );
    const name = table('typed');
    const stage = postgresOutputFor(Push).create('out', {
      url: postgresUrl(),
      table: name,
      key: 'id',
    });
    const sink = await stage.createSink({ ...ctx, signal: new AbortController().signal });
    const value = {
      id: 'p1',
      size: 3,
      score: 0.5,
      public: true,
      createdAt: '2024-05-01T10:00:00.000Z',
      note: null,
      repo: { name: 'octo/hello' },
      tags: ['a', 'b\tc'],
    };
    try {
      await sink.write([{ key: 'ignored', value, timestamp: 0 }]);
    } finally {
      await sink.close();
    }
    const columns = await withClient(
      async (c) =>
        (
          await c.query(
            `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
            [name],
          )
        ).rows as { column_name: string; data_type: string }[],
    );
    expect(Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]))).toEqual({
      id: 'text',
      size: 'bigint',
      score: 'double precision',
      public: 'boolean',
      createdAt: 'timestamp with time zone',
      note: 'text',
      repo: 'jsonb',
      tags: 'jsonb',
    });
    const [row] = await withClient(
      async (c) =>
        (await c.query(`SELECT *, "createdAt"::text AS at FROM "${name}"`)).rows as Record<
          string,
          unknown
        >[],
    );
    expect(row).toMatchObject({
      id: 'p1',
      size: '3',
      score: 0.5,
      public: true,
      note: null,
      repo: value.repo,
      tags: value.tags,
    });
    expect(new Date(row!['createdAt'] as Date).toISOString()).toBe(value.createdAt);
  });

  it('derives the columns from a `schema` setting too (what a pipeline file can give)', async () => {
    const name = table('schemasetting');
    const schema = {
      type: 'object',
      properties: { id: { type: 'integer' }, name: { type: 'string' }, meta: { type: 'object' } },
    };
    const sink = await PostgresOutputSink.open(config({ table: name, key: 'id', schema }), ctx);
    try {
      await sink.write([
        { value: { id: 1, name: 'a', meta: { x: 1 }, ignored: true }, timestamp: 0 },
      ]);
    } finally {
      await sink.close();
    }
    const types = await withClient(
      async (c) =>
        (
          await c.query(
            `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
            [name],
          )
        ).rows as { column_name: string; data_type: string }[],
    );
    expect(types.map((t) => [t.column_name, t.data_type])).toEqual([
      ['id', 'bigint'],
      ['name', 'text'],
      ['meta', 'jsonb'],
      ['extra', 'jsonb'], // the schema allows other fields: they are kept, not dropped
    ]);
    expect(await rows(name, 'id')).toEqual([
      { id: '1', name: 'a', meta: { x: 1 }, extra: { ignored: true } },
    ]);
  });

  it('maps columns explicitly (column ← field path, $key, $timestamp, $value) into an existing table', async () => {
    const name = table('mapped');
    await withClient((c) =>
      c.query(
        `CREATE TABLE "${name}" (k text PRIMARY KEY, repo text, commits integer, labels text[], at timestamptz, doc jsonb, extra text DEFAULT 'kept')`,
      ),
    );
    const sink = await PostgresOutputSink.open(
      config({
        table: name,
        keyColumn: 'k',
        columns: {
          k: '$key',
          repo: 'repo.name',
          commits: 'payload.size',
          labels: 'labels',
          at: '$timestamp',
          doc: '$value',
        },
      }),
      ctx,
    );
    const value = {
      repo: { name: 'octo/back\\slash\nline' },
      payload: { size: 7 },
      labels: ['x', 'y "q"', null],
    };
    try {
      await sink.write([{ key: 'r1', value, timestamp: Date.UTC(2024, 0, 2, 3, 4, 5, 6) }]);
      await sink.write([{ key: 'r2', value: { repo: { name: 'only' } }, timestamp: 0 }]);
    } finally {
      await sink.close();
    }
    const stored = await rows<Record<string, unknown>>(name, 'k');
    expect(stored).toEqual([
      {
        k: 'r1',
        repo: value.repo.name,
        commits: 7,
        labels: ['x', 'y "q"', null],
        at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)),
        doc: value,
        extra: 'kept',
      },
      {
        k: 'r2',
        repo: 'only',
        commits: null,
        labels: null,
        at: new Date(0),
        doc: { repo: { name: 'only' } },
        extra: 'kept',
      },
    ]);
  });
});

describe('postgresOutput rejected rows', () => {
  it('returns exactly the rows the server refuses, with its error, and commits the rest of the batch', async () => {
    const name = table('rejects');
    await withClient((c) =>
      c.query(
        `CREATE TABLE "${name}" (id text PRIMARY KEY, n integer CHECK (n >= 0), text text, doc jsonb)`,
      ),
    );
    const sink = await PostgresOutputSink.open<Record<string, unknown>>(
      config({ table: name, key: 'id', columns: { id: 'id', n: 'n', text: 'text', doc: 'doc' } }),
      ctx,
    );
    const batch: StreamRecord<Record<string, unknown>>[] = Array.from({ length: 200 }, (_, i) => ({
      key: undefined,
      value: { id: `r${i}`, n: i, text: `row ${i}`, doc: { i } },
      timestamp: i,
    }));
    const bad = new Map<number, string>([
      [3, '22021'], // NUL in text
      [77, '23514'], // CHECK constraint
      [78, '22P02'], // not an integer
      [150, '22P05'], // NUL escape in jsonb
      [199, '22003'], // out of integer range
      [45, '22P02'], // unpaired surrogate escape in jsonb
    ]);
    batch[3]!.value['text'] = 'nul \u0000 here';
    batch[77]!.value['n'] = -1;
    batch[78]!.value['n'] = 'seventy-eight';
    batch[150]!.value['doc'] = { s: 'a\u0000b' };
    batch[199]!.value['n'] = 2 ** 40;
    batch[42]!.value = { n: 42 }; // no id: no key
    batch[43]!.value['doc'] = { big: 43n }; // not JSON
    batch[44]!.value['text'] = 'lone \ud800 surrogate'; // not Unicode: UTF-8 would alter it
    batch[45]!.value['doc'] = { s: 'lone \udc00' }; // escaped in JSON: the server refuses it
    let result: Awaited<ReturnType<typeof sink.write>>;
    try {
      result = await sink.write(batch);
    } finally {
      await sink.close();
    }
    const failed = result?.failed ?? [];
    const rejected = failed.filter((f) => f.error instanceof PostgresRecordRejectedError);
    expect(
      new Map(
        rejected.map((f) => [
          batch.indexOf(f.record),
          (f.error as PostgresRecordRejectedError).details['sqlState'],
        ]),
      ),
    ).toEqual(bad);
    for (const f of rejected)
      expect((f.error as Error).message).toMatch(
        /PostgreSQL refused a record for table .*SQLSTATE/,
      );
    const missing = failed.filter((f) => f.error instanceof PostgresRecordKeyMissingError);
    expect(missing.map((f) => f.record)).toEqual([batch[42]]);
    const unencodable = failed.filter((f) => f.error instanceof PostgresRecordUnencodableError);
    expect(unencodable.map((f) => f.record)).toEqual([batch[43], batch[44]]);
    expect(failed.length).toBe(bad.size + 3);
    // The original values, untouched, reach the dead letters.
    expect(rejected.find((f) => batch.indexOf(f.record) === 3)!.record.value['text']).toBe(
      'nul \u0000 here',
    );

    const stored = await rows<{ id: string }>(name, 'id');
    const expectedIds = batch
      .filter((_, i) => !bad.has(i) && ![42, 43, 44].includes(i))
      .map((r) => r.value['id'] as string)
      .sort();
    expect(stored.map((r) => r.id)).toEqual(expectedIds);
  });

  it('pins a deferred constraint violation on its row instead of failing the COMMIT', async () => {
    const name = table('deferred');
    await withClient((c) =>
      c.query(
        `CREATE TABLE "${name}" (id text PRIMARY KEY, email text, UNIQUE (email) DEFERRABLE INITIALLY DEFERRED)`,
      ),
    );
    const sink = await PostgresOutputSink.open<Record<string, unknown>>(
      config({ table: name, key: 'id', columns: { id: 'id', email: 'email' } }),
      ctx,
    );
    const batch = ['a', 'b', 'c', 'd'].map((id) => ({
      value: { id, email: id === 'c' ? 'a@x' : `${id}@x` },
      timestamp: 0,
    }));
    let result: Awaited<ReturnType<typeof sink.write>>;
    try {
      result = await sink.write(batch);
    } finally {
      await sink.close();
    }
    expect(
      result?.failed.map((f) => [
        f.record,
        (f.error as PostgresRecordRejectedError).details['sqlState'],
      ]),
    ).toEqual([[batch[2], '23505']]);
    expect((await rows<{ id: string }>(name, 'id')).map((r) => r.id)).toEqual(['a', 'b', 'd']);
  });

  it('in append mode too', async () => {
    const name = table('appendrejects');
    const sink = await PostgresOutputSink.open<Record<string, unknown>>(
      config({
        table: name,
        mode: 'append',
        columns: { id: 'id', text: { from: 'text', type: 'text' } },
      }),
      ctx,
    );
    const batch = Array.from({ length: 64 }, (_, i) => ({
      value: { id: `a${i}`, text: i === 10 ? '\u0000' : 'ok' },
      timestamp: i,
    }));
    let result: Awaited<ReturnType<typeof sink.write>>;
    try {
      result = await sink.write(batch);
    } finally {
      await sink.close();
    }
    expect(result?.failed.map((f) => f.record)).toEqual([batch[10]]);
    const stored = await rows<{ id: string }>(name, 'id');
    expect(stored.length).toBe(batch.length - 1);
  });
});

describe('postgresOutput stored positions (exactly-once without Kafka transactions)', () => {
  it('stores positions with the rows, skips a replayed batch, and returns them for a restart', async () => {
    const name = table('positions');
    const positionsTable = table('positions_pos');
    const cfg = config({
      table: name,
      mode: 'append',
      columns: { id: 'id', n: { from: 'n', type: 'integer' } },
      storePositions: true,
      positionsTable,
    });
    const records = events(300, 300);
    const sink = await PostgresOutputSink.open<Event>(cfg, ctx);
    try {
      expect(await sink.positions()).toEqual({});
      await sink.write(records.slice(0, 100), { 'events/0': '100' });
      await sink.write(records.slice(100, 200), { 'events/0': '200', 'events/1': '5' });
    } finally {
      await sink.close();
    }
    // "Crash" and restart: the runtime asks where to resume, and replays from an older checkpoint.
    const again = await PostgresOutputSink.open<Event>(cfg, ctx);
    try {
      expect(await again.positions()).toEqual({ 'events/0': '200', 'events/1': '5' });
      await again.write(records.slice(0, 100), { 'events/0': '100' });
      await again.write(records.slice(100, 200), { 'events/0': '200' });
      await again.write(records.slice(200), { 'events/0': '300' });
      expect(await again.positions()).toEqual({ 'events/0': '300', 'events/1': '5' });
    } finally {
      await again.close();
    }
    const stored = await rows<{ n: number }>(name, 'n');
    expect(stored.map((r) => r.n)).toEqual(records.map((r) => r.value.n));
  });

  it('a failing batch commits neither its rows nor its positions', async () => {
    const name = table('atomic');
    const positionsTable = table('atomic_pos');
    await withClient(async (c) => {
      await c.query(`CREATE TABLE "${name}" (id text, n integer)`);
      // A failure that is not about one record's content (RAISE: SQLSTATE P0001).
      await c.query(
        `CREATE FUNCTION "${name}_fail"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.n = 13 THEN RAISE EXCEPTION 'unlucky'; END IF; RETURN NEW; END $$`,
      );
      await c.query(
        `CREATE TRIGGER fail BEFORE INSERT ON "${name}" FOR EACH ROW EXECUTE FUNCTION "${name}_fail"()`,
      );
    });
    const sink = await PostgresOutputSink.open<Event>(
      config({
        table: name,
        mode: 'append',
        columns: { id: 'id', n: 'n' },
        storePositions: true,
        positionsTable,
      }),
      ctx,
    );
    try {
      await sink.write(events(10, 10), { 'p/0': '10' });
      const error = await sink.write(events(10, 10, 10), { 'p/0': '20' }).catch((e: unknown) => e);
      expect((error as Error).message).toContain('unlucky');
      expect((error as { retryable: boolean }).retryable).toBe(false);
      expect(await sink.positions()).toEqual({ 'p/0': '10' });
      expect((await rows<{ n: number }>(name, 'n')).map((r) => r.n)).toEqual(
        events(10, 10).map((r) => r.value.n),
      );
    } finally {
      await sink.close();
      await withClient((c) => c.query(`DROP TABLE "${name}"; DROP FUNCTION "${name}_fail"()`));
    }
  });
});

describe('postgresOutput component', () => {
  it('is named output and validates its config up front', () => {
    expect(postgresOutput.name).toBe('output');
    expect(() => postgresOutput.create('o', { table: 'bad name' } as never)).toThrow(/table/);
  });
});

describe('postgresOutput connection loss', () => {
  it('a connection dying mid-batch is a retryable error that commits nothing; the retry reconnects', async () => {
    const name = table('dying');
    await withClient(async (c) => {
      await c.query(`CREATE TABLE "${name}" (id text PRIMARY KEY, n integer)`);
      // The server ends this very session while the batch's INSERT runs.
      await c.query(
        `CREATE FUNCTION "${name}_die"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.n = 7 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$`,
      );
      await c.query(
        `CREATE TRIGGER die BEFORE INSERT ON "${name}" FOR EACH ROW EXECUTE FUNCTION "${name}_die"()`,
      );
    });
    const sink = await PostgresOutputSink.open<Event>(
      config({ table: name, key: 'id', columns: { id: 'id', n: 'n' } }),
      ctx,
    );
    const batch = events(20, 20);
    try {
      const error = await sink.write(batch).catch((e: unknown) => e);
      expect(isRetryable(error)).toBe(true);
      expect((error as Error).message).toMatch(/terminat/i);
      expect(await rows(name, 'id')).toEqual([]);
      await withClient((c) => c.query(`DROP TRIGGER die ON "${name}"`));
      expect(await sink.write(batch)).toBeUndefined(); // what the runtime's retry does
    } finally {
      await sink.close();
      await withClient((c) => c.query(`DROP FUNCTION "${name}_die"() CASCADE`));
    }
    expect((await rows<{ n: number }>(name, 'n')).map((r) => r.n)).toEqual(
      batch.map((r) => r.value.n),
    );
  });
});
