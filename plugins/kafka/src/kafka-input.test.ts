import { randomBytes } from 'node:crypto';
import {
  decodeDeadLetter,
  defineOutput,
  PipelineBuilder,
  silentLogger,
  Any,
  z,
  type StreamRecord,
} from '@codefeedr/core';
import { waitFor } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import { kafkaInput } from './kafka-input.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

function collectingOutput(into: StreamRecord[]) {
  return defineOutput({
    name: 'collect',
    description: 'keeps records in memory',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({
      write: (batch) => void into.push(...batch),
      flush: async () => undefined,
      close: async () => undefined,
    }),
  });
}

describe('kafkaInput', () => {
  it('reads an existing topic, keys by a value field, dead-letters undecodable messages and resumes from the committed offsets', async () => {
    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    const topic = `cf-kafka-input-${run}`;
    const stageId = `events-${run}`;
    try {
      await buffer.admin.ensureTopic({ name: topic, partitions: 3 });
      const producer = await buffer.producer({ clientId: `external-${run}` });
      const first = Array.from({ length: 300 }, (_, i) => ({ id: i, user: `u${i % 7}` }));
      await producer.send(topic, [
        ...first
          .slice(0, 150)
          .map((v) => ({ key: `k${v.id}`, value: encode(v), timestamp: Date.now() })),
        { key: 'bad', value: Uint8Array.from([0xc3, 0x28]), timestamp: Date.now() }, // invalid UTF-8
        ...first
          .slice(150)
          .map((v) => ({ key: `k${v.id}`, value: encode(v), timestamp: Date.now() })),
      ]);

      const runOnce = async (expected: number): Promise<StreamRecord[]> => {
        const collected: StreamRecord[] = [];
        const stop = new AbortController();
        const pipeline = new PipelineBuilder(`kafka-input-${run}`)
          .append(
            kafkaInput.create(stageId, { brokers, topic, keyField: 'user', logLevel: 'nothing' }),
          )
          .append(collectingOutput(collected).create(`collect-${run}`, {}))
          .setBuffer(buffer)
          .build();
        const done = pipeline.run({ mode: 'inline', signal: stop.signal, logger: silentLogger });
        await waitFor(() => collected.length >= expected, {
          timeoutMs: 30_000,
          description: `${expected} records`,
        });
        stop.abort();
        expect((await done).status).toBe('stopped');
        return collected;
      };

      const collected = await runOnce(300);
      expect(collected.map((r) => (r.value as { id: number }).id).sort((a, b) => a - b)).toEqual(
        first.map((v) => v.id),
      );
      for (const record of collected)
        expect(record.key).toBe((record.value as { user: string }).user);

      const reader = await buffer.consumer({
        group: `dlq-reader-${run}`,
        topics: [`${stageId}.dlq`],
        start: 'earliest',
      });
      const letters = await waitFor(async () => {
        const batch = await reader.poll(10, 200);
        return batch.length > 0 ? batch : undefined;
      });
      await reader.close();
      expect(letters).toHaveLength(1);
      const letter = decodeDeadLetter(letters[0]!.value);
      expect(letter.stageId).toBe(stageId);
      expect(letter.error.code).toBe('SOURCE_RECORD_INVALID');
      expect(letter.original).toEqual({
        encoding: 'base64',
        data: Buffer.from([0xc3, 0x28]).toString('base64'),
      });

      // The stop committed the group's offsets: a second run reads only what came after.
      const second = Array.from({ length: 40 }, (_, i) => ({ id: 1000 + i, user: 'late' }));
      await producer.send(
        topic,
        second.map((v) => ({ key: `k${v.id}`, value: encode(v), timestamp: Date.now() })),
      );
      await producer.close();
      const again = await runOnce(40);
      expect(again.map((r) => (r.value as { id: number }).id).sort((a, b) => a - b)).toEqual(
        second.map((v) => v.id),
      );
    } finally {
      await buffer.close();
    }
  });

  it('reports every config problem at once', () => {
    expect(() =>
      kafkaInput.create('bad', { brokers: [], topic: '', start: 'yesterday' } as never),
    ).toThrow(/brokers[\s\S]*topic[\s\S]*start/);
  });
});
