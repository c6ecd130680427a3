import { randomBytes } from 'node:crypto';
import {
  defineTransform,
  msgpackSerde,
  PipelineBuilder,
  SequenceNumber,
  sequenceInput,
  silentLogger,
  Any,
  z,
} from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import { kafkaOutput } from './kafka-output.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');

describe('kafkaOutput', () => {
  it('writes every record to a topic, encoded by the serde and keyed by a value field', async () => {
    const topic = `cf-kafka-output-${run}`;
    const count = 500;
    const tag = defineTransform({
      name: 'tag',
      description: 'n → { n, parity }',
      configSchema: z.object({}),
      inputTypes: [SequenceNumber] as const,
      outputType: Any,
      transform: ([numbers]) => numbers.map((n) => ({ n, parity: n % 2 === 0 ? 'even' : 'odd' })),
    });
    const pipeline = new PipelineBuilder(`kafka-output-${run}`)
      .append(sequenceInput.create(`numbers-${run}`, { from: 1, to: count }))
      .append(tag.create(`tag-${run}`, {}))
      .append(
        kafkaOutput.create(`out-${run}`, {
          brokers,
          topic,
          partitions: 4,
          keyField: 'parity',
          serde: 'msgpack',
          compression: 'gzip',
          logLevel: 'nothing',
        }),
      )
      .build();
    expect((await pipeline.run({ mode: 'inline', logger: silentLogger })).status).toBe('finished');

    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    try {
      const consumer = await buffer.consumer({
        group: `reader-${run}`,
        topics: [topic],
        start: 'earliest',
      });
      const received = [];
      const deadline = Date.now() + 30_000;
      while (received.length < count && Date.now() < deadline)
        received.push(...(await consumer.poll(500, 200)));
      await consumer.close();
      expect(received).toHaveLength(count);
      const values = received.map(
        (m) => msgpackSerde.decode(m.value) as { n: number; parity: string },
      );
      expect(values.map((v) => v.n).sort((a, b) => a - b)).toEqual(
        Array.from({ length: count }, (_, i) => i + 1),
      );
      const partitionsByKey = new Map<string, Set<number>>();
      for (const [i, m] of received.entries()) {
        expect(m.key).toBe(values[i]!.parity);
        partitionsByKey.set(m.key!, (partitionsByKey.get(m.key!) ?? new Set()).add(m.partition));
      }
      expect([...partitionsByKey.values()].map((s) => s.size)).toEqual([1, 1]);
    } finally {
      await buffer.close();
    }
  });

  it('refuses a compression codec kafkajs does not have, saying how to add it', () => {
    expect(
      () =>
        new KafkaBuffer(
          kafkaBufferConfigSchema.parse({ brokers: ['127.0.0.1:1'], compression: 'zstd' }),
        ),
    ).toThrow(/KAFKA_COMPRESSION_CODEC_MISSING|codec/);
  });
});
