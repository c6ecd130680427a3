// The Kafka output runs the testkit's sink conformance suite against the real broker. Sends
// are not idempotent (a replay after a crash sends again): it proves at-least-once. On each
// of the plugin's clients (the `client` key: kafkajs, @platformatic/kafka).
import { sinkConformanceSuite } from '@codefeedr/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
afterAll(() => buffer.close());

/**
 * Messages in the topic, from the broker's offsets (no transactions: one offset per message).
 * A new admin client each time: kafkajs keeps refreshing metadata of every topic an admin has
 * looked at, and fails once an earlier test's topic is deleted.
 */
async function messagesIn(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Messages per key: the whole topic read back by a new consumer group. */
async function storedKeys(topic: string, testName: string): Promise<Map<string, number>> {
  const expected = await messagesIn(topic);
  const consumer = await buffer.consumer({
    group: `cf-kafka-output-reader-${testName}-${Date.now()}`,
    topics: [topic],
    start: 'earliest',
  });
  const counts = new Map<string, number>();
  let read = 0;
  try {
    const deadline = Date.now() + 30_000;
    while (read < expected && Date.now() < deadline) {
      for (const m of await consumer.poll(1_000, 200)) {
        counts.set(String(m.key), (counts.get(String(m.key)) ?? 0) + 1);
        read++;
      }
    }
  } finally {
    await consumer.close();
  }
  if (read < expected) throw new Error(`read ${read} of the ${expected} messages in ${topic}`);
  return counts;
}

for (const client of ['kafkajs', 'platformatic'] as const)
  sinkConformanceSuite({
    name: `kafka-output (${client})`,
    output: { module: new URL('./index.ts', import.meta.url), export: 'kafkaOutput' },
    target: async (testName) => {
      const topic = `cf-kafka-output-${client}-${testName}`;
      return {
        config: { brokers, topic, partitions: 3, client, logLevel: 'nothing' },
        stored: () => storedKeys(topic, testName),
        drop: () => buffer.admin.deleteTopic(topic),
      };
    },
    idempotent: false,
    // Over the broker's message.max.bytes (1 MiB by default): Kafka refuses it for what it is.
    rejectedValue: (id) => ({ id, key: 'oversized', seq: 0, padding: 'x'.repeat(2 * 1024 * 1024) }),
  });
