import type { StreamRecord } from '@codefeedr/core';
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoSetupError } from './errors.js';
import {
  MongoOutputSink,
  mongoOutput,
  mongoOutputConfigSchema,
  type MongoOutputOptions,
} from './mongo-output.js';
import { mongoUrl, rawMongo, uniqueDatabase } from './mongo-test-support.js';

const database = uniqueDatabase('output');
let raw: MongoClient;
const sinks: MongoOutputSink[] = [];
let collections = 0;

async function openSink(options: Partial<MongoOutputOptions> = {}): Promise<MongoOutputSink> {
  const sink = new MongoOutputSink(
    mongoOutputConfigSchema.parse({
      url: mongoUrl(),
      database,
      collection: `c${++collections}`,
      ...options,
    }),
  );
  await sink.open();
  sinks.push(sink);
  return sink;
}

function collectionOf(sink: MongoOutputSink) {
  return raw
    .db(database)
    .collection((sink as unknown as { config: { collection: string } }).config.collection);
}

function records(
  count: number,
  keys: number,
  extra: (i: number) => object = () => ({}),
): StreamRecord<unknown>[] {
  return Array.from({ length: count }, (_, i) => ({
    key: `key-${i % keys}`,
    value: { n: i, key: `key-${i % keys}`, ...extra(i) },
    timestamp: 1_700_000_000_000 + i,
  }));
}

beforeAll(async () => {
  raw = await rawMongo();
});

afterAll(async () => {
  await Promise.allSettled(sinks.map((s) => s.close()));
  await raw.db(database).dropDatabase();
  await raw.close();
});

describe('MongoOutputSink', () => {
  it('upserts by record key: a replayed batch writes nothing twice and the last record of a key wins', async () => {
    const sink = await openSink();
    const batch = records(500, 37);
    const distinct = new Set(batch.map((r) => r.key)).size;
    const lastOfKey = new Map(batch.map((r) => [r.key!, (r.value as { n: number }).n]));
    expect(await sink.write(batch)).toBeUndefined();
    expect(await sink.write(batch)).toBeUndefined(); // the replay after a crash
    await sink.flush();
    const stored = await collectionOf(sink).find().toArray();
    expect(stored).toHaveLength(distinct);
    for (const doc of stored) expect(doc.n).toBe(lastOfKey.get(doc._id as unknown as string));
  });

  it('replays a batch of updates larger than one command may carry (sent in slices)', async () => {
    const sink = await openSink();
    const batch = records(260, 260); // every key once: one round of 260 updates of existing documents
    await sink.write(batch);
    expect(await sink.write(batch)).toBeUndefined();
    expect(await collectionOf(sink).countDocuments()).toBe(batch.length);
  });

  it('upserts by a value field with a unique index it creates', async () => {
    const sink = await openSink({ keyField: 'meta.id' });
    const batch = records(120, 120, (i) => ({ meta: { id: i % 40 } }));
    await sink.write(batch);
    await sink.write(batch.slice(0, 60));
    const collection = collectionOf(sink);
    expect(await collection.countDocuments()).toBe(
      new Set(batch.map((r) => (r.value as { meta: { id: number } }).meta.id)).size,
    );
    const indexes = await collection.listIndexes().toArray();
    expect(indexes.find((index) => index.key['meta.id'] === 1)).toMatchObject({ unique: true });
    // A second sink on the same collection finds the index instead of creating another.
    const again = await openSink({ keyField: 'meta.id', collection: collection.collectionName });
    await again.write(batch.slice(0, 1));
    expect((await collection.listIndexes().toArray()).length).toBe(indexes.length);
  });

  it('inserts every record in insert mode (append-only: a replay appends again)', async () => {
    const sink = await openSink({ mode: 'insert' });
    const batch = records(300, 7);
    await sink.write(batch);
    expect(await collectionOf(sink).countDocuments()).toBe(batch.length);
    await sink.write(batch);
    expect(await collectionOf(sink).countDocuments()).toBe(2 * batch.length);
    expect(batch.every((r) => !('_id' in (r.value as object)))).toBe(true); // values are not mutated
  });

  it('replaces the whole document, or merges the fields with $set', async () => {
    const first = { key: 'k', value: { a: 1, b: 1 }, timestamp: 1 };
    const second = { key: 'k', value: { b: 2 }, timestamp: 2 };
    const replace = await openSink({ update: 'replace' });
    await replace.write([first]);
    await replace.write([second]);
    expect(await collectionOf(replace).findOne({ _id: 'k' as never })).toEqual({ _id: 'k', b: 2 });
    const merge = await openSink({ update: 'set' });
    await merge.write([first]);
    await merge.write([second]);
    expect(await collectionOf(merge).findOne({ _id: 'k' as never })).toEqual({
      _id: 'k',
      a: 1,
      b: 2,
    });
    // Within one batch too, records of one key apply in order.
    await merge.write([
      { key: 'j', value: { a: 1 }, timestamp: 3 },
      { key: 'j', value: { b: 1 }, timestamp: 4 },
      { key: 'j', value: { a: 2 }, timestamp: 5 },
    ]);
    expect(await collectionOf(merge).findOne({ _id: 'j' as never })).toEqual({
      _id: 'j',
      a: 2,
      b: 1,
    });
  });

  for (const options of [
    { mode: 'upsert', update: 'replace' },
    { mode: 'upsert', update: 'set' },
    { mode: 'insert' },
  ] as const) {
    it(`returns the records the server refuses, with its error, and writes the rest (${JSON.stringify(options)})`, async () => {
      const sink = await openSink(options);
      const batch = records(200, 200);
      const bad = new Map<number, string>([
        [3, 'dollar'],
        [77, 'nested dollar'],
        [78, 'dotted'],
        [150, 'too large'],
        [199, 'not a document'],
      ]);
      // To $set, a dotted name is a path into a nested document, not a bad field name.
      if (options.mode === 'upsert' && options.update === 'set') bad.delete(78);
      batch[3]!.value = { n: 3, $bad: 1 };
      batch[77]!.value = { n: 77, inner: { $bad: 1 } };
      batch[78]!.value = { n: 78, 'a.b': 1 };
      batch[150]!.value = { n: 150, blob: 'x'.repeat(17 * 1024 * 1024) };
      batch[199]!.value = 42;
      const originals = new Map([...bad.keys()].map((i) => [i, batch[i]!]));
      const result = await sink.write(batch);
      const failed = result?.failed ?? [];
      expect(failed.map((f) => batch.indexOf(f.record)).sort((a, b) => a - b)).toEqual([
        ...bad.keys(),
      ]);
      for (const failure of failed) {
        expect(failure.record).toBe(originals.get(batch.indexOf(failure.record))); // the original, untouched
        expect(failure.error).toMatchObject({ code: 'MONGODB_RECORD_REJECTED', retryable: false });
        expect((failure.error as Error).message).toContain(`${database}.`);
        expect((failure.error as Error).message).toContain(failure.record.key);
      }
      const tooLarge = failed.find((f) => f.record === originals.get(150))!;
      expect((tooLarge.error as Error).message).toMatch(
        /over the server's limit of 16777216 bytes/,
      );
      const dollar = failed.find((f) => f.record === originals.get(3))!;
      expect((dollar.error as Error).message).toMatch(/\$bad/);
      const stored = await collectionOf(sink)
        .find({}, { projection: { n: 1 } })
        .toArray();
      const expected = batch.map((_, i) => i).filter((i) => !bad.has(i));
      expect(stored.map((d) => d.n as number).sort((a, b) => a - b)).toEqual(expected);
    });
  }

  it('refuses records it cannot upsert by (no key, key field missing) without sending them', async () => {
    const byKey = await openSink();
    const result = await byKey.write([
      { value: { a: 1 }, timestamp: 1 },
      { key: 'ok', value: { a: 2 }, timestamp: 2 },
    ]);
    expect(result?.failed).toHaveLength(1);
    expect((result!.failed[0]!.error as Error).message).toMatch(/no key to upsert by/);
    const byField = await openSink({ keyField: 'id' });
    const fieldResult = await byField.write([
      { value: { a: 1 }, timestamp: 1 },
      { value: { id: [1, 2] }, timestamp: 1 },
      { value: { id: 'x' }, timestamp: 2 },
    ]);
    expect(fieldResult?.failed.map((f) => f.record.value)).toEqual([{ a: 1 }, { id: [1, 2] }]);
    expect(await collectionOf(byField).countDocuments()).toBe(1);
  });

  it('reads Extended JSON wrappers as BSON types', async () => {
    const sink = await openSink();
    await sink.write([
      {
        key: 'e',
        value: {
          at: { $date: '2024-05-01T00:00:00.000Z' },
          ref: { $oid: '6b106282615ed08be8a76d5e' },
        },
        timestamp: 1,
      },
    ]);
    const doc = await collectionOf(sink).findOne({ _id: 'e' as never });
    expect(doc!.at).toBeInstanceOf(Date);
    expect(doc!.ref.toHexString()).toBe('6b106282615ed08be8a76d5e');
  });

  it('honours the write concern setting', async () => {
    const sink = await openSink({ writeConcern: { w: 1, journal: true } });
    await sink.write(records(10, 10));
    expect(await collectionOf(sink).countDocuments()).toBe(10);
  });

  it('fails at start on a missing collection when createCollection is false, and on a conflicting index', async () => {
    await expect(
      openSink({ collection: 'never-created', createCollection: false }),
    ).rejects.toMatchObject({
      code: 'MONGODB_SETUP_FAILED',
    });
    await raw.db(database).collection('plain-index').createIndex({ id: 1 });
    const error = await openSink({ collection: 'plain-index', keyField: 'id' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MongoSetupError);
    expect((error as Error).message).toMatch(/exists but is not unique/);
  });

  it('keeps FerretDB answering when several outputs upsert stored documents into one database at once', async () => {
    // Four outputs re-upserting 150 stored documents each: without the per-database write
    // gate, FerretDB 1.24 runs out of SQLite connections and stops answering (issue: CI hang).
    const outputs = await Promise.all([1, 2, 3, 4].map(() => openSink()));
    const batch = records(150, 150);
    await Promise.all(outputs.map((sink) => sink.write(batch)));
    await Promise.all(outputs.map((sink) => sink.write(batch)));
    for (const sink of outputs) expect(await collectionOf(sink).countDocuments()).toBe(150);
  }, 60_000);

  it('refuses maxBatchWrites over 99 for upserts on FerretDB, which stops answering such update commands', async () => {
    const error = await openSink({ maxBatchWrites: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MongoSetupError);
    expect((error as Error).message).toMatch(/maxBatchWrites is 100.*99 or less/);
    // Inserts hold no connection: any slice size is fine.
    const inserts = await openSink({ mode: 'insert', maxBatchWrites: 500 });
    await inserts.write(records(600, 600));
    expect(await collectionOf(inserts).countDocuments()).toBe(600);
  });

  it('is the `output` component, whose config problems are reported at once', () => {
    expect(mongoOutput).toMatchObject({ kind: 'output', name: 'output' });
    expect(() =>
      mongoOutput.create('out', { mode: 'sideways', writeConcern: { w: -1 } } as never),
    ).toThrow(/collection[\s\S]*mode[\s\S]*writeConcern/);
  });
});
