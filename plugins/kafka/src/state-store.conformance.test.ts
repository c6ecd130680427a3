// The Kafka state store (`stateStore: 'buffer'` on the Kafka buffer) against the shared suite:
// each store is another worker's buffer. The state topics it made are deleted at the end.
import type { StateStore } from '@codefeedr/core';
import { stateStoreConformanceSuite } from '@codefeedr/testkit';
import { afterAll } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import type { KafkaStateStore } from './state-store.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );
const buffers: KafkaBuffer[] = [];
const topics = new Set<string>();

afterAll(async () => {
  const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
  for (const topic of topics) await buffer.admin.deleteTopic(topic).catch(() => undefined);
  await buffer.close();
  for (const b of buffers) await b.close();
});

stateStoreConformanceSuite({
  name: 'kafka',
  create: async (): Promise<StateStore> => {
    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    buffers.push(buffer);
    const store = (await buffer.stateStore()) as KafkaStateStore;
    // The suite picks its pipeline names; the topics they map to are noted for the cleanup.
    const note = (pipeline: string, stage: string) => topics.add(store.topicOf(pipeline, stage));
    return {
      kind: store.kind,
      incremental: store.incremental,
      load: (pipeline, stage, partition) => (
        note(pipeline, stage),
        store.load(pipeline, stage, partition)
      ),
      save: (pipeline, stage, partition, shard) => (
        note(pipeline, stage),
        store.save(pipeline, stage, partition, shard)
      ),
      close: () => store.close(),
    };
  },
});
