// Proves the harness's MongoDB-protocol server (FerretDB) handles what the mongodb
// driver sends: a bulkWrite of upserts that inserts some documents and updates others.
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { requireEnv, runId } from './env.ts';

interface Doc {
  _id: string;
  value: number;
  source: string;
}

describe('MongoDB wire protocol (mongodb driver)', () => {
  const client = new MongoClient(requireEnv('CODEFEEDR_MONGODB_URL'));
  const collection = client.db('codefeedr_proof').collection<Doc>(`upserts_${runId()}`);

  afterAll(async () => {
    await collection.drop().catch(() => undefined);
    await client.close();
  });

  it('upserts with bulkWrite: existing documents updated, missing ones inserted', async () => {
    // k0..k4 exist beforehand; the bulk write touches k0..k9.
    await collection.insertMany(
      Array.from({ length: 5 }, (_, i) => ({ _id: `k${i}`, value: -1, source: 'seed' })),
    );

    const result = await collection.bulkWrite(
      Array.from({ length: 10 }, (_, i) => ({
        updateOne: {
          filter: { _id: `k${i}` },
          update: { $set: { value: i * 10, source: 'bulk' } },
          upsert: true,
        },
      })),
      { ordered: true },
    );
    expect(result.matchedCount).toBe(5);
    expect(result.modifiedCount).toBe(5);
    expect(result.upsertedCount).toBe(5);
    expect(Object.values(result.upsertedIds).sort()).toEqual(['k5', 'k6', 'k7', 'k8', 'k9']);

    const docs = await collection.find({}).sort({ _id: 1 }).toArray();
    expect(docs).toEqual(
      Array.from({ length: 10 }, (_, i) => ({ _id: `k${i}`, value: i * 10, source: 'bulk' })),
    );
  });
});
