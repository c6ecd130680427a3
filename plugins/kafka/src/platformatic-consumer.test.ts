// The consumer on @platformatic/kafka when its message stream fails (as its fetches do when a
// dead broker's partitions are still moving: the three-broker fault test met it under load).
// The failure is injected by destroying the stream with an error; what follows is the real
// recovery on the real broker: a new stream, the records already returned skipped.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafkaBuffer, kafkaBufferConfigSchema } from './index.js';
import type { PlatformaticBufferConsumer } from './platformatic-consumer.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
const topic = `cftest-platformatic-consumer-${run}`;
const buffer = createKafkaBuffer(
  kafkaBufferConfigSchema.parse({ brokers, client: 'platformatic', logLevel: 'nothing' }),
);
afterAll(async () => {
  await buffer.admin.deleteTopic(topic).catch(() => undefined);
  await buffer.close();
});

/** The consumer's current stream, as the client would fail it. */
function streamOf(consumer: PlatformaticBufferConsumer): NodeJS.ReadableStream & {
  destroy(error: Error): void;
} {
  return (consumer as unknown as { stream: never }).stream;
}

describe('the @platformatic/kafka consumer after its stream fails', () => {
  it('opens a new stream and goes on where it was: nothing lost, nothing delivered twice', async () => {
    await buffer.admin.ensureTopic({ name: topic, partitions: 3 });
    const producer = await buffer.producer({ clientId: `producer-${run}` });
    const values = Array.from({ length: 3_000 }, (_, i) => i);
    await producer.send(
      topic,
      values.map((i) => ({ key: `k${i % 17}`, value: Buffer.from(String(i)), timestamp: i })),
    );
    await producer.close();
    const consumer = (await buffer.consumer({
      group: `group-${run}`,
      topics: [topic],
      start: 'earliest',
      maxBufferedRecords: 200,
    })) as PlatformaticBufferConsumer;
    const seen: number[] = [];
    const poll = async (): Promise<void> => {
      for (const m of await consumer.poll(250, 200)) seen.push(Number(Buffer.from(m.value)));
    };
    try {
      while (seen.length < 1_000) await poll();
      // Committed up to here; the next 500 are returned but not committed when the stream fails.
      await consumer.commit();
      while (seen.length < 1_500) await poll();
      const before = streamOf(consumer);
      before.destroy(new Error('fetch failed 6 times (injected)'));
      const deadline = Date.now() + 30_000;
      while (seen.length < values.length && Date.now() < deadline) await poll();
      for (let quiet = 0; quiet < 3;) {
        const size = seen.length;
        await poll();
        quiet = seen.length === size ? quiet + 1 : 0;
      }
      expect(streamOf(consumer)).not.toBe(before);
      expect(seen.length).toBe(values.length);
      expect([...seen].sort((a, b) => a - b)).toEqual(values);
      expect(consumer.assignment().length).toBe(3);
    } finally {
      await consumer.close();
    }
  }, 60_000);
});
