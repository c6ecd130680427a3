// Proves the harness's Kafka is a real broker that kafkajs (the Kafka plugin's client)
// can use end to end: a 3-partition topic, 10,000 keyed records produced, and a consumer
// group reading back exactly those records with per-key order preserved.
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { requireEnv, runId } from './env.ts';

const RECORDS = 10_000;
const KEYS = 50;

describe('Kafka (kafkajs)', () => {
  const brokers = requireEnv('CODEFEEDR_KAFKA_BROKERS').split(',');
  const id = runId();
  const topic = `proof-${id}`;
  const kafka = new Kafka({ clientId: `proof-${id}`, brokers, logLevel: logLevel.ERROR });
  const admin: Admin = kafka.admin();
  const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const consumer: Consumer = kafka.consumer({ groupId: `proof-group-${id}` });

  afterAll(async () => {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('round-trips 10,000 keyed records through a 3-partition topic and a consumer group', async () => {
    await admin.connect();
    expect(
      await admin.createTopics({
        topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
        waitForLeaders: true,
      }),
    ).toBe(true);
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(metadata.topics[0]?.partitions).toHaveLength(3);

    // Record i belongs to key i % 50 and is that key's (i / 50)-th record.
    const produced: { key: string; value: string }[] = [];
    for (let i = 0; i < RECORDS; i++) {
      const key = `key-${i % KEYS}`;
      produced.push({ key, value: JSON.stringify({ key, seq: Math.floor(i / KEYS), i }) });
    }
    await producer.connect();
    for (let start = 0; start < RECORDS; start += 1_000) {
      await producer.send({ topic, acks: -1, messages: produced.slice(start, start + 1_000) });
    }

    const received: { key: string; value: string; partition: number }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const allReceived = new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            received.push({
              key: message.key?.toString() ?? '',
              value: message.value?.toString() ?? '',
              partition,
            });
            if (received.length >= RECORDS) resolve();
          },
        })
        .catch(reject);
    });
    await allReceived;

    expect(received).toHaveLength(RECORDS);
    expect(new Set(received.map((r) => r.value))).toEqual(new Set(produced.map((p) => p.value)));

    const seqsByKey = new Map<string, number[]>();
    const partitionsByKey = new Map<string, Set<number>>();
    for (const r of received) {
      const { key, seq } = JSON.parse(r.value) as { key: string; seq: number };
      expect(r.key).toBe(key);
      seqsByKey.set(key, [...(seqsByKey.get(key) ?? []), seq]);
      partitionsByKey.set(key, (partitionsByKey.get(key) ?? new Set()).add(r.partition));
    }
    expect(seqsByKey.size).toBe(KEYS);
    const inOrder = Array.from({ length: RECORDS / KEYS }, (_, seq) => seq);
    for (const [key, seqs] of seqsByKey) {
      expect(seqs, `order of ${key}`).toEqual(inOrder); // per-key order preserved
      expect(partitionsByKey.get(key)?.size, `partitions of ${key}`).toBe(1);
    }
    // 50 keys over 3 partitions: every partition got some.
    expect(new Set(received.map((r) => r.partition))).toEqual(new Set([0, 1, 2]));
  });
});
