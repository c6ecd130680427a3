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

  it('pauses on the bytes it holds too: large records stop fetching long before the record bound', async () => {
    const maxBytesPerPartition = 65_536;
    const buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', maxBytesPerPartition }),
    );
    const topic = `cf-kafka-bytes-${run}`;
    const partitions = 2;
    const total = 400;
    const size = 10_000; // 400 records of 10 kB: 4 MB in the topic
    try {
      await buffer.admin.ensureTopic({ name: topic, partitions });
      const producer = await buffer.producer({ clientId: `bytes-${run}` });
      const value = (i: number) => new TextEncoder().encode(String(i).padEnd(size, '.'));
      // Sent 4 at a time, so no record batch exceeds a fetch (the broker always returns a
      // partition's first batch whole, whatever maxBytesPerPartition says).
      for (let i = 0; i < total; i += 4)
        await producer.send(
          topic,
          Array.from({ length: 4 }, (_, j) => ({
            key: `k${i + j}`,
            value: value(i + j),
            timestamp: Date.now(),
          })),
        );
      await producer.close();

      const maxBufferedBytes = 200_000; // 20 records' worth; the record bound is 10,000
      const consumer = (await buffer.consumer({
        group: `bytes-${run}`,
        topics: [topic],
        maxBufferedRecords: 10_000,
        maxBufferedBytes,
      })) as KafkaBufferConsumer;
      await waitFor(() => consumer.backpressured, {
        timeoutMs: 30_000,
        description: 'the consumer to pause on the bytes it holds',
      });
      // Within the bound plus what the fetches in flight when it paused may add (kafkajs
      // fetches ahead: two per partition at most here).
      const slack = 2 * partitions * (maxBytesPerPartition + size);
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
      expect(consumer.bufferedBytes).toBe(0);
      expect(consumer.backpressured).toBe(false);
      await consumer.close();
    } finally {
      await buffer.close();
    }
  });

  it('keeps its place in the partitions it keeps across a rebalance (kafkajs would restart them from the commit)', async () => {
    const buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', heartbeatIntervalMs: 300 }),
    );
    const topic = `cf-kafka-keep-${run}`;
    const group = `keep-${run}`;
    try {
      await buffer.admin.ensureTopic({ name: topic, partitions: 4 });
      const producer = await buffer.producer({ clientId: `keep-${run}` });
      await producer.send(
        topic,
        Array.from({ length: 400 }, (_, i) => ({
          key: `k${i}`,
          value: new TextEncoder().encode(String(i)),
          timestamp: Date.now(),
        })),
      );
      await producer.close();

      const first = await buffer.consumer({ group, topics: [topic] });
      const firstSeen: string[] = [];
      await waitFor(
        async () => {
          for (const m of await first.poll(500, 100)) firstSeen.push(`${m.partition}@${m.offset}`);
          return firstSeen.length >= 400;
        },
        { intervalMs: 0, description: 'the first consumer to read everything' },
      );
      // Nothing committed: a second member joins; the first keeps two partitions.
      const secondPending = buffer.consumer({ group, topics: [topic] });
      const again: string[] = [];
      await waitFor(
        async () => {
          for (const m of await first.poll(500, 100)) again.push(`${m.partition}@${m.offset}`);
          return first.assignment().length === 2 || undefined;
        },
        { intervalMs: 0, description: 'the first consumer to keep 2 of 4 partitions' },
      );
      const second = await secondPending;
      const secondSeen = new Set<number>();
      const kept = new Set(first.assignment().map((tp) => tp.partition));
      const secondExpected = firstSeen.filter((key) => !kept.has(Number(key.split('@')[0]))).length;
      await waitFor(
        async () => {
          for (const m of await second.poll(500, 100))
            secondSeen.add(Number(m.offset) * 10 + m.partition);
          for (const m of await first.poll(500, 0)) again.push(`${m.partition}@${m.offset}`);
          return secondSeen.size >= secondExpected;
        },
        { intervalMs: 0, description: 'the second consumer to read its (uncommitted) partitions' },
      );
      for (const m of await first.poll(500, 500)) again.push(`${m.partition}@${m.offset}`);
      // The revoked partitions went to the second consumer from the (absent) commit; the kept
      // ones were not delivered again to the first.
      expect(again).toEqual([]);
      expect(secondSeen.size).toBe(secondExpected);
      await Promise.all([first.close(), second.close()]);
    } finally {
      await buffer.close();
    }
  });

  it('reports its lag: records between what poll returned and the partition end', async () => {
    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    const topic = `cf-kafka-lag-${run}`;
    try {
      await buffer.admin.ensureTopic({ name: topic, partitions: 1 });
      const producer = await buffer.producer({ clientId: `lag-${run}` });
      await producer.send(
        topic,
        Array.from({ length: 1_000 }, (_, i) => ({
          value: new TextEncoder().encode(String(i)),
          timestamp: Date.now(),
        })),
      );
      await producer.close();
      const consumer = await buffer.consumer({ group: `lag-${run}`, topics: [topic] });
      let polled = 0;
      await waitFor(
        async () => {
          polled += (await consumer.poll(400 - polled, 100)).length;
          return polled === 400;
        },
        { intervalMs: 0, description: '400 records' },
      );
      await waitFor(() => consumer.lag?.() === 600, {
        description: 'lag 600 once the fetches reached the end',
      });
      await consumer.close();
    } finally {
      await buffer.close();
    }
  });
});
