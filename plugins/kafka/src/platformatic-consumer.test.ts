// The consumer on @platformatic/kafka on the real broker: its queue's bounds (backpressure),
// and what it does when its message stream fails (as its fetches do when a dead broker's
// partitions are still moving: the three-broker fault test met it under load). The failure is
// injected by destroying the stream with an error; what follows is the real recovery: a new
// stream, the records already returned skipped.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '@codefeedr/testkit';
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

describe('the @platformatic/kafka consumer under backpressure', () => {
  it('pauses on the bytes it holds: large records stop fetching long before the record bound', async () => {
    const maxBytesPerPartition = 65_536;
    const bytesBuffer = createKafkaBuffer(
      kafkaBufferConfigSchema.parse({
        brokers,
        client: 'platformatic',
        logLevel: 'nothing',
        maxBytesPerPartition,
      }),
    );
    const bytesTopic = `${topic}-bytes`;
    const partitions = 2;
    const total = 400;
    const size = 10_000; // 400 records of 10 kB: 4 MB in the topic
    try {
      await bytesBuffer.admin.ensureTopic({ name: bytesTopic, partitions });
      const producer = await bytesBuffer.producer({ clientId: `bytes-${run}` });
      const value = (i: number) => new TextEncoder().encode(String(i).padEnd(size, '.'));
      for (let i = 0; i < total; i += 4)
        await producer.send(
          bytesTopic,
          Array.from({ length: 4 }, (_, j) => ({
            key: `k${i + j}`,
            value: value(i + j),
            timestamp: Date.now(),
          })),
        );
      await producer.close();

      const maxBufferedBytes = 200_000; // 20 records' worth; the record bound is 10,000
      const consumer = (await bytesBuffer.consumer({
        group: `bytes-${run}`,
        topics: [bytesTopic],
        start: 'earliest',
        maxBufferedRecords: 10_000,
        maxBufferedBytes,
      })) as PlatformaticBufferConsumer;
      await waitFor(() => consumer.backpressured, {
        timeoutMs: 30_000,
        description: 'the consumer to pause on the bytes it holds',
      });
      // Within the bound plus what a fetch in flight when it paused may add (one request of
      // maxBufferedBytes / 2, a partition's first record batch whole whatever the bounds say).
      const slack = maxBufferedBytes / 2 + partitions * (maxBytesPerPartition + 4 * size);
      let peak = 0;
      const sampleUntil = Date.now() + 1_000;
      while (Date.now() < sampleUntil) {
        peak = Math.max(peak, consumer.bufferedBytes);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(peak).toBeGreaterThanOrEqual(maxBufferedBytes);
      expect(peak).toBeLessThanOrEqual(maxBufferedBytes + slack);
      expect(consumer.bufferedRecords).toBeLessThan(total);

      const seen = new Set<number>();
      await waitFor(
        async () => {
          for (const m of await consumer.poll(50, 100))
            seen.add(Number.parseInt(new TextDecoder().decode(m.value), 10));
          return seen.size >= total;
        },
        { timeoutMs: 60_000, intervalMs: 0, description: `all ${total} records` },
      );
      expect(seen.size).toBe(total);
      expect(consumer.bufferedBytes).toBe(0);
      expect(consumer.backpressured).toBe(false);
      await consumer.close();
    } finally {
      await bytesBuffer.admin.deleteTopic(bytesTopic).catch(() => undefined);
      await bytesBuffer.close();
    }
  }, 90_000);
});
