import { SOURCE_ERROR_HEADER, type JsonValue, type StreamRecord } from '@codefeedr/core';
import { waitFor } from '@codefeedr/testkit';
import { ObjectId, type MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MongoInputSource,
  mongoInput,
  mongoInputConfigSchema,
  type MongoInputOptions,
} from './mongo-input.js';
import { mongoUrl, rawMongo, uniqueDatabase } from './mongo-test-support.js';

const database = uniqueDatabase('input');
let raw: MongoClient;
const sources: MongoInputSource[] = [];
const never = new AbortController().signal;

async function openSource(
  collection: string,
  options: Partial<MongoInputOptions> = {},
): Promise<MongoInputSource> {
  const source = new MongoInputSource(
    mongoInputConfigSchema.parse({ url: mongoUrl(), database, collection, ...options }),
  );
  await source.open();
  sources.push(source);
  return source;
}

/** Every record until the source ends (bounded) or `limit` records, `batch` at a time. */
async function drain(
  source: MongoInputSource,
  batch: number,
  limit = Infinity,
): Promise<StreamRecord<unknown>[]> {
  const out: StreamRecord<unknown>[] = [];
  while (out.length < limit) {
    const records = await source.poll(Math.min(batch, limit - out.length), never);
    if (records === null) break;
    out.push(...records);
  }
  return out;
}

/** `count` documents with ObjectIds from one writer (increasing), a key and a sequence number. */
function documents(count: number, from = 0) {
  return Array.from({ length: count }, (_, i) => ({
    _id: new ObjectId(),
    n: from + i,
    key: `key-${(from + i) % 5}`,
  }));
}

beforeAll(async () => {
  raw = await rawMongo();
});

afterAll(async () => {
  await Promise.allSettled(sources.map((s) => s.close()));
  await raw.db(database).dropDatabase();
  await raw.close();
});

describe('MongoInputSource', () => {
  it('reads a collection in _id order, every document once, then ends (bounded)', async () => {
    const docs = documents(437);
    await raw.db(database).collection('bounded').insertMany(docs);
    const source = await openSource('bounded');
    const read = await drain(source, 100);
    expect(read.map((r) => (r.value as { n: number }).n)).toEqual(docs.map((d) => d.n));
    const [first] = read;
    expect(first!.key).toBe(docs[0]!._id.toHexString());
    expect(first!.value).toEqual({ _id: { $oid: docs[0]!._id.toHexString() }, n: 0, key: 'key-0' });
    expect(first!.timestamp).toBe(docs[0]!._id.getTimestamp().getTime());
    expect(await source.poll(100, never)).toBeNull();
  });

  it('resumes after its position on a new source: nothing skipped, nothing re-read', async () => {
    const docs = documents(250);
    await raw.db(database).collection('resume').insertMany(docs);
    const first = await openSource('resume');
    const head = await drain(first, 40, 130);
    const position = JSON.parse(JSON.stringify(first.position())) as JsonValue; // as a checkpoint stores it
    await first.close();
    const second = await openSource('resume');
    await second.restore(position);
    const tail = await drain(second, 40);
    const ids = [...head, ...tail].map((r) => (r.value as { n: number }).n);
    expect(ids).toEqual(docs.map((d) => d.n));
  });

  it('fixes its end at the first poll, and a restored source ends at the same place', async () => {
    const collection = raw.db(database).collection('end');
    const docs = documents(60);
    await collection.insertMany(docs);
    const source = await openSource('end');
    const head = await drain(source, 25, 25);
    await collection.insertMany(documents(30, 1_000)); // written while the run goes on
    const position = source.position();
    const rest = await drain(source, 25);
    expect([...head, ...rest]).toHaveLength(docs.length);
    const restored = await openSource('end');
    await restored.restore(position);
    expect(await drain(restored, 25)).toHaveLength(docs.length - head.length);
    // A new run (no position) reads everything there is now.
    expect(await drain(await openSource('end'), 50)).toHaveLength(docs.length + 30);
  });

  it('follows new documents in follow mode', async () => {
    const collection = raw.db(database).collection('follow');
    await collection.insertMany(documents(3));
    const source = await openSource('follow', { follow: true, pollIntervalMs: 20 });
    expect(await source.poll(10, never)).toHaveLength(3);
    expect(await source.poll(10, never)).toEqual([]); // nothing new: an empty batch, not the end
    const later = documents(4, 100);
    await collection.insertMany(later);
    const seen: StreamRecord<unknown>[] = [];
    await waitFor(
      async () => {
        seen.push(...((await source.poll(10, never)) ?? []));
        return seen.length >= later.length;
      },
      { description: 'the new documents' },
    );
    expect(seen.map((r) => (r.value as { n: number }).n)).toEqual(later.map((d) => d.n));
  });

  it('reads in the order of another field with ties across batches, with filter, key and event time', async () => {
    const collection = raw.db(database).collection('ordered');
    // seq repeats (ties) and runs against insertion order; some documents lack it.
    const docs = Array.from({ length: 90 }, (_, i) => ({
      _id: `doc-${String(i).padStart(3, '0')}`,
      seq: (i * 7) % 30,
      type: i % 3 === 0 ? 'skip' : 'keep',
      repo: { name: `repo-${i % 4}` },
      at: new Date(1_700_000_000_000 + i * 1000),
    }));
    await collection.insertMany([...docs, { _id: 'no-seq', type: 'keep' }] as never[]);
    const source = await openSource('ordered', {
      orderBy: 'seq',
      filter: { type: 'keep' },
      keyField: 'repo.name',
      timestampField: 'at',
    });
    const read = await drain(source, 7); // 7 splits runs of equal seq between batches
    const expected = docs
      .filter((d) => d.type === 'keep')
      .sort((a, b) => a.seq - b.seq || a._id.localeCompare(b._id));
    expect(read.map((r) => (r.value as { _id: string })._id)).toEqual(expected.map((d) => d._id));
    expect(read[0]!.key).toBe(expected[0]!.repo.name);
    expect(read[0]!.timestamp).toBe(expected[0]!.at.getTime());
  });

  it('dead-letters a document without a valid event time and reads on', async () => {
    await raw
      .db(database)
      .collection('times')
      .insertMany([
        { _id: 'a', at: '2024-01-01T00:00:00Z' },
        { _id: 'b', at: 'not a date' },
        { _id: 'c', at: 1_700_000_000_000 },
      ] as never[]);
    const read = await drain(await openSource('times', { timestampField: 'at' }), 10);
    expect(read.map((r) => r.headers?.[SOURCE_ERROR_HEADER] === undefined)).toEqual([
      true,
      false,
      true,
    ]);
    expect(read[1]!.headers![SOURCE_ERROR_HEADER]).toMatch(/document b: field "at" is not a date/);
    expect(JSON.parse(read[1]!.value as string)).toEqual({ _id: 'b', at: 'not a date' });
  });

  it('says clearly that the server has no change streams, naming it and what to use instead', async () => {
    const error = await openSource('follow', { changeStream: true }).catch((e: unknown) => e);
    const info = await raw.db('admin').command({ buildInfo: 1 });
    expect(error).toMatchObject({ code: 'MONGODB_CHANGE_STREAMS_UNSUPPORTED', retryable: false });
    expect((error as Error).message).toContain(
      info.ferretdbVersion ? `FerretDB ${info.ferretdbVersion}` : 'MongoDB',
    );
    expect((error as Error).message).toMatch(/changeStream: false.*follow: true/);
  });

  it('is the `input` component', () => {
    expect(mongoInput).toMatchObject({ kind: 'input', name: 'input' });
    expect(() => mongoInput.create('in', {} as never)).toThrow(/collection/);
  });
});
