import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );
const run = randomBytes(4).toString('hex');

/** The topic's configs as the broker reports them (not as this plugin asked for them). */
async function topicConfigs(topic: string): Promise<Record<string, string>> {
  const kafka = new kafkajs.Kafka({ brokers: brokers!, logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }],
    });
    return Object.fromEntries(
      resources[0]!.configEntries.map((e) => [e.configName, e.configValue]),
    );
  } finally {
    await admin.disconnect();
  }
}

describe('KafkaBuffer topics', () => {
  it('keeps records of created topics however old their event timestamps (retention.ms -1)', async () => {
    // Records carry event time as their Kafka timestamp; with the broker's 7-day time retention
    // a replay of 2015 events was deleted before the next stage read it.
    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    const ensured = `cf-kafka-retention-${run}`;
    const sentTo = `cf-kafka-retention-auto-${run}`;
    try {
      await buffer.admin.ensureTopic({ name: ensured, partitions: 1 });
      const producer = await buffer.producer({ clientId: `retention-${run}` });
      await producer.send(sentTo, [
        { value: new TextEncoder().encode('{}'), timestamp: Date.UTC(2015, 0, 1) },
      ]);
      await producer.close();
      expect((await topicConfigs(ensured))['retention.ms']).toBe('-1');
      expect((await topicConfigs(sentTo))['retention.ms']).toBe('-1');
    } finally {
      await buffer.admin.deleteTopic(ensured).catch(() => undefined);
      await buffer.admin.deleteTopic(sentTo).catch(() => undefined);
      await buffer.close();
    }
  });

  it('lets topicConfig and a stage’s bufferConfig set their own retention', async () => {
    const buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({
        brokers,
        logLevel: 'nothing',
        topicConfig: { 'retention.ms': '86400000' },
      }),
    );
    const fromBuffer = `cf-kafka-retention-buffer-${run}`;
    const fromStage = `cf-kafka-retention-stage-${run}`;
    try {
      await buffer.admin.ensureTopic({ name: fromBuffer, partitions: 1 });
      await buffer.admin.ensureTopic({
        name: fromStage,
        partitions: 1,
        config: { 'retention.ms': '3600000' },
      });
      expect((await topicConfigs(fromBuffer))['retention.ms']).toBe('86400000');
      expect((await topicConfigs(fromStage))['retention.ms']).toBe('3600000');
    } finally {
      await buffer.admin.deleteTopic(fromBuffer).catch(() => undefined);
      await buffer.admin.deleteTopic(fromStage).catch(() => undefined);
      await buffer.close();
    }
  });
});

describe('KafkaBuffer transactions', () => {
  it('commits a transaction larger than the broker’s max message size (sent in byte chunks)', async () => {
    // An exactly-once batch's outputs and state shards go to one partition in one transaction;
    // sent as one produce request, 2.4 MB was refused (MESSAGE_TOO_LARGE) and the stage died.
    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    const topic = `cf-kafka-tx-large-${run}`;
    try {
      await buffer.admin.ensureTopic({ name: topic, partitions: 1 });
      const producer = await buffer.producer({ clientId: `tx-large-${run}`, transactional: true });
      const values = Array.from({ length: 24 }, () => randomBytes(100_000)); // incompressible
      const tx = await producer.beginTransaction!();
      await tx.send(
        topic,
        values.map((value, i) => ({ key: 'k', value, timestamp: i })),
      );
      await tx.commit();
      await producer.close();
      const consumer = await buffer.consumer({ group: `tx-large-${run}`, topics: [topic] });
      const got: Uint8Array[] = [];
      for (let polls = 0; got.length < values.length && polls < 200; polls++)
        for (const m of await consumer.poll(100, 200)) got.push(m.value);
      await consumer.close();
      expect(got.map((v) => Buffer.from(v).toString('hex'))).toEqual(
        values.map((v) => v.toString('hex')),
      );
    } finally {
      await buffer.close();
    }
  }, 60_000);
});

describe('KafkaBuffer record batches', () => {
  it.each([false, true])(
    'sends many small records with keys and headers to one partition (transactional: %s)',
    async (transactional) => {
      // Chunks counted only values: 20,000 records of 40-byte values (800 KB) are one chunk,
      // but with their keys, headers and per-record framing one partition's batch is over
      // 2 MB, which the broker refuses whole (MESSAGE_TOO_LARGE) and the stage died.
      const buffer = new KafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }),
      );
      const topic = `cf-kafka-small-records-${transactional}-${run}`;
      try {
        await buffer.admin.ensureTopic({ name: topic, partitions: 1 });
        const producer = await buffer.producer({
          clientId: `small-records-${transactional}-${run}`,
          transactional,
        });
        const messages = Array.from({ length: 20_000 }, (_, i) => ({
          key: `key-${String(i).padStart(6, '0')}`,
          value: randomBytes(40),
          timestamp: i,
          headers: { 'codefeedr-test-header': `value-${String(i).padStart(20, '0')}` },
        }));
        if (transactional) {
          const tx = await producer.beginTransaction!();
          await tx.send(topic, messages);
          await tx.commit();
        } else await producer.send(topic, messages);
        await producer.close();
        const consumer = await buffer.consumer({
          group: `small-records-${transactional}-${run}`,
          topics: [topic],
        });
        const got: string[] = [];
        for (let polls = 0; got.length < messages.length && polls < 400; polls++)
          for (const m of await consumer.poll(5_000, 200)) got.push(m.key ?? '');
        await consumer.close();
        expect(got).toEqual(messages.map((m) => m.key));
      } finally {
        await buffer.close();
      }
    },
    60_000,
  );
});
