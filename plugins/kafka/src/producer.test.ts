import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { toKafkaMessages } from './producer.js';

describe('KafkaBufferProducer partitioning', () => {
  it('puts a keyed record on the partition kafkajs’s default (Java-compatible murmur2) partitioner picks', () => {
    for (const partitions of [1, 3, 6, 7, 12]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
        partitionId,
        leader: 1,
        partitionErrorCode: 0,
        replicas: [1],
        isr: [1],
      }));
      const kafkajsPartition = kafkajs.Partitioners.DefaultPartitioner();
      const keys = Array.from(
        { length: 2_000 },
        (_, i) => `${i}-${(i * 7919).toString(36)}-ключ-${'x'.repeat(i % 13)}`,
      );
      const ours = toKafkaMessages(
        keys.map((key) => ({ key, value: new Uint8Array(0), timestamp: 0 })),
        partitions,
        { next: 0 },
      ).map((m) => m.partition);
      const theirs = keys.map((key) =>
        kafkajsPartition({ topic: 't', partitionMetadata, message: { key, value: null } }),
      );
      expect(ours).toEqual(theirs);
    }
  });

  it('honours an explicit partition and spreads keyless records round-robin', () => {
    const messages = toKafkaMessages(
      [
        { key: 'k', value: new Uint8Array(0), timestamp: 0, partition: 4 },
        ...Array.from({ length: 6 }, () => ({ value: new Uint8Array(0), timestamp: 0 })),
      ],
      6,
      { next: 2 },
    );
    expect(messages.map((m) => m.partition)).toEqual([4, 2, 3, 4, 5, 0, 1]);
  });
});
