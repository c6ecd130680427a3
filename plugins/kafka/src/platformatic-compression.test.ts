// The buffer on @platformatic/kafka compresses with any of the codecs its config names, with no
// codec to register (kafkajs has only gzip built in): each one round-trips through the broker.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKafkaBuffer, kafkaBufferConfigSchema } from './index.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');

describe('compression on the @platformatic/kafka client', () => {
  for (const compression of ['gzip', 'snappy', 'lz4', 'zstd'] as const)
    it(`${compression}: what is sent is read back whole`, async () => {
      const topic = `cftest-compression-${compression}-${run}`;
      const buffer = createKafkaBuffer(
        kafkaBufferConfigSchema.parse({
          brokers,
          client: 'platformatic',
          compression,
          logLevel: 'nothing',
        }),
      );
      try {
        await buffer.admin.ensureTopic({ name: topic, partitions: 2 });
        const producer = await buffer.producer({ clientId: `compression-${run}` });
        const sent = Array.from({ length: 500 }, (_, i) => `${compression} record ${i} `.repeat(8));
        await producer.send(
          topic,
          sent.map((text, i) => ({ key: `k${i % 7}`, value: Buffer.from(text), timestamp: i })),
        );
        await producer.close();
        const consumer = await buffer.consumer({
          group: topic,
          topics: [topic],
          start: 'earliest',
        });
        const got: string[] = [];
        const deadline = Date.now() + 20_000;
        while (got.length < sent.length && Date.now() < deadline)
          for (const m of await consumer.poll(200, 200)) got.push(Buffer.from(m.value).toString());
        await consumer.close();
        expect(got.sort()).toEqual([...sent].sort());
      } finally {
        await buffer.admin.deleteTopic(topic).catch(() => undefined);
        await buffer.close();
      }
    });
});
