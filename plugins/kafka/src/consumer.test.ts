import { randomBytes } from 'node:crypto';
import { waitFor } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import type { KafkaBufferConsumer } from './consumer.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );
const run = randomBytes(4).toString('hex');

describe('KafkaBufferConsumer', () => {
  it('pauses fetching while its queue is full, resumes as poll drains it, and delivers everything once in order', async () => {
    const maxBytesPerPartition = 8_192;
    const buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', maxBytesPerPartition }),
    );
    const topic = `cf-kafka-backpressure-${run}`;
    const partitions = 3;
    const total = 6_000;
    try {
      await buffer.admin.ensureTopic({ name: topic, partitions });
      const producer = await buffer.producer({ clientId: `bp-${run}` });
      const value = (i: number) =>
        new TextEncoder().encode(JSON.stringify({ i, pad: 'x'.repeat(40) }));
      for (let i = 0; i < total; i += 1_000) {
        await producer.send(
          topic,
          Array.from({ length: 1_000 }, (_, j) => ({
            key: `k${(i + j) % 30}`,
            value: value(i + j),
            timestamp: Date.now(),
          })),
        );
      }
      await producer.close();

      const bound = 300;
      const consumer = (await buffer.consumer({
        group: `bp-${run}`,
        topics: [topic],
        maxBufferedRecords: bound,
      })) as KafkaBufferConsumer;
      await waitFor(() => consumer.backpressured, {
        timeoutMs: 30_000,
        description: 'the consumer to pause on a full queue',
      });
      // While nobody polls, the queue stays within the bound plus what one fetch may add
      // (each partition's fetch is at most maxBytesPerPartition).
      const slack = partitions * Math.ceil(maxBytesPerPartition / value(0).length);
      let peak = 0;
      const sampleUntil = Date.now() + 1_000;
      while (Date.now() < sampleUntil) {
        peak = Math.max(peak, consumer.bufferedRecords);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(peak).toBeGreaterThanOrEqual(bound);
      expect(peak).toBeLessThanOrEqual(bound + slack);

      const seen: number[] = [];
      const lastByPartition = new Map<number, bigint>();
      await waitFor(
        async () => {
          for (const m of await consumer.poll(200, 100)) {
            const offset = BigInt(m.offset);
            expect(offset > (lastByPartition.get(m.partition) ?? -1n)).toBe(true);
            lastByPartition.set(m.partition, offset);
            seen.push((JSON.parse(new TextDecoder().decode(m.value)) as { i: number }).i);
          }
          return seen.length >= total;
        },
        { timeoutMs: 60_000, intervalMs: 0, description: `all ${total} records` },
      );
      expect(consumer.backpressured).toBe(false);
      expect(seen.length).toBe(total);
      expect(new Set(seen).size).toBe(total);
      await consumer.close();
    } finally {
      await buffer.close();
    }
  });
});
