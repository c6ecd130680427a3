import type {
  BufferMessage,
  BufferProducer,
  BufferTransaction,
  TopicPartitionOffset,
} from '@codefeedr/core';
import type { CompressionTypes, Message, Producer, Transaction } from 'kafkajs';
import { KafkaNotTransactionalError } from './errors.js';

export interface KafkaProducerSettings {
  acks: -1 | 0 | 1;
  compression: CompressionTypes;
  /** Resolves once the topic exists (creating it on first use). */
  prepareTopic: (topic: string) => Promise<void>;
}

/**
 * One kafkajs producer. Records are partitioned by key with kafkajs's default partitioner
 * (murmur2, the same as the Java client), so a key lands on the same partition whichever
 * client wrote it. Sends are serialised: the idempotent producer's per-partition sequence
 * numbers must not interleave, and the runtime awaits each batch anyway.
 */
export class KafkaBufferProducer implements BufferProducer {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly producer: Producer,
    private readonly clientId: string,
    private readonly transactional: boolean,
    private readonly settings: KafkaProducerSettings,
  ) {}

  send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    const next = this.tail.then(async () => {
      await this.settings.prepareTopic(topic);
      return this.producer.send({
        topic,
        messages: toKafkaMessages(messages),
        acks: this.settings.acks,
        compression: this.settings.compression,
      });
    });
    this.tail = next.catch(() => undefined);
    return next.then(() => undefined);
  }

  async beginTransaction(): Promise<BufferTransaction> {
    if (!this.transactional) throw new KafkaNotTransactionalError(this.clientId);
    await this.tail;
    const transaction = await this.producer.transaction();
    return new KafkaBufferTransaction(transaction, this.settings);
  }

  async close(): Promise<void> {
    await this.tail;
    await this.producer.disconnect();
  }
}

class KafkaBufferTransaction implements BufferTransaction {
  constructor(
    private readonly transaction: Transaction,
    private readonly settings: KafkaProducerSettings,
  ) {}

  async send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.settings.prepareTopic(topic);
    await this.transaction.send({
      topic,
      messages: toKafkaMessages(messages),
      acks: -1,
      compression: this.settings.compression,
    });
  }

  async sendOffsets(group: string, positions: readonly TopicPartitionOffset[]): Promise<void> {
    if (positions.length === 0) return;
    const topics = new Map<string, { partition: number; offset: string }[]>();
    for (const { topic, partition, offset } of positions) {
      const list = topics.get(topic) ?? [];
      list.push({ partition, offset });
      topics.set(topic, list);
    }
    await this.transaction.sendOffsets({
      consumerGroupId: group,
      topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })),
    });
  }

  async commit(): Promise<void> {
    await this.transaction.commit();
  }

  async abort(): Promise<void> {
    await this.transaction.abort();
  }
}

/** Contract messages to kafkajs messages; values are wrapped as Buffers without copying. */
export function toKafkaMessages(messages: readonly BufferMessage[]): Message[] {
  const out = new Array<Message>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const value = Buffer.isBuffer(m.value)
      ? m.value
      : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength);
    const message: Message = { value, timestamp: String(m.timestamp) };
    if (m.key !== undefined) message.key = m.key;
    if (m.headers !== undefined) message.headers = m.headers;
    if (m.partition !== undefined) message.partition = m.partition;
    out[i] = message;
  }
  return out;
}
