import { sinkConformanceSuite, sourceConformanceSuite } from '@codefeedr/testkit';
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll } from 'vitest';
import { mongoUrl, rawMongo, uniqueDatabase } from './mongo-test-support.js';

const database = uniqueDatabase('conformance');
let raw: MongoClient;
const index = new URL('./index.ts', import.meta.url);

beforeAll(async () => {
  raw = await rawMongo();
});

afterAll(async () => {
  await raw.db(database).dropDatabase();
  await raw.close();
});

/** A collection the output writes; `stored` counts documents per `field` (the record key's home). */
function sinkTarget(config: Record<string, string>, field: string) {
  return async (name: string) => {
    const collection = raw.db(database).collection(name);
    return {
      config: { url: mongoUrl(), database, collection: name, ...config },
      async stored() {
        const counts = new Map<string, number>();
        for await (const doc of collection.find({}, { projection: { [field]: 1 } })) {
          const key = String(doc[field]);
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        return counts;
      },
      drop: () => collection.drop().then(() => undefined),
    };
  };
}

sinkConformanceSuite({
  name: 'mongodb upsert',
  output: { module: index, export: 'mongoOutput' },
  target: sinkTarget({}, '_id'), // upsert by record key: the key is the _id
  idempotent: true,
  rejectedValue: (id) => ({ id, key: 'rejected', seq: 0, $bad: 1 }),
});

sinkConformanceSuite({
  name: 'mongodb insert',
  output: { module: index, export: 'mongoOutput' },
  target: sinkTarget({ mode: 'insert' }, 'id'),
  idempotent: false,
  rejectedValue: (id) => ({ id, key: 'rejected', seq: 0, $bad: 1 }),
});

for (const bounded of [true, false]) {
  sourceConformanceSuite({
    name: `mongodb ${bounded ? 'bounded' : 'follow'}`,
    input: { module: index, export: 'mongoInput' },
    bounded,
    target: async (name) => {
      const collection = raw.db(database).collection(name);
      return {
        config: {
          url: mongoUrl(),
          database,
          collection: name,
          follow: !bounded,
          pollIntervalMs: 50,
        },
        // One writer: the driver's ObjectIds increase in append order, which is the read order.
        append: async (values) => {
          if (values.length > 0) await collection.insertMany(values.map((v) => ({ ...v })));
        },
        drop: () => collection.drop().then(() => undefined),
      };
    },
    idOf: (value) => (value as { id: string }).id,
  });
}
