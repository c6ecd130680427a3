import type { BufferMessage, BufferProducer } from '@codefeedr/core';
import type { Producer } from '@platformatic/kafka';
import type { Message, RecordMetadata } from 'kafkajs';
import { sendPartitioned, type Spread } from './producer.js';
import { SerialSends } from './serial-sends.js';

export interface PlatformaticProducerSettings {
  acks: -1 | 0 | 1;
  /** Resolves once the topic exists (creating it on first use), with its partition count. */
  prepareTopic: (topic: string) => Promise<number>;
}

/**
 * One @platformatic/kafka producer behind the buffer's producer contract. Partitions are
 * chosen exactly as the kafkajs producer chooses them (toKafkaMessages: explicit, else murmur2
 * of the key, else round-robin), so both clients put a key on the same partition; requests are
 * cut at the same byte bound, and each is checked against the broker's answer the same way
 * (sendCompletely), a partition missing from it being sent again.
 *
 * Sends are serialised, as on kafkajs: the idempotent producer's sequence numbers must not
 * interleave, and the runtime awaits each batch anyway.
 */
export class PlatformaticBufferProducer implements BufferProducer {
  private readonly sends = new SerialSends();
  private readonly spread: Spread = { next: Math.floor(Math.random() * 1_000_000) };

  constructor(
    private readonly producer: Producer,
    private readonly settings: PlatformaticProducerSettings,
  ) {}

  send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return this.sends.run(async () => {
      const partitions = await this.settings.prepareTopic(topic);
      const { acks } = this.settings;
      await sendPartitioned(topic, messages, partitions, this.spread, acks, (batch) =>
        sendOnce(topic, batch, acks, (options) => this.producer.send(options)),
      );
    });
  }

  async close(): Promise<void> {
    await this.sends.idle();
    await this.producer.close();
  }
}

type ProduceCall = Producer['send'] extends (options: infer O) => unknown ? O : never;

/** One produce request; answers which partitions the brokers acknowledged, as kafkajs does. */
async function sendOnce(
  topic: string,
  batch: Message[],
  acks: -1 | 0 | 1,
  produce: (options: ProduceCall) => Promise<{ offsets?: { topic: string; partition: number }[] }>,
): Promise<RecordMetadata[]> {
  const result = await produce({
    acks,
    messages: batch.map((m) => {
      let headers: Map<Buffer, Buffer> | undefined;
      if (m.headers !== undefined)
        for (const name in m.headers) {
          const value = m.headers[name];
          if (value !== undefined)
            (headers ??= new Map()).set(Buffer.from(name), Buffer.from(value as string));
        }
      return {
        topic,
        partition: m.partition!,
        key: m.key === undefined || m.key === null ? undefined : Buffer.from(m.key),
        value: m.value as Buffer,
        timestamp: BigInt(m.timestamp!),
        headers,
      };
    }),
  });
  return (result.offsets ?? []).map((o) => ({
    topicName: o.topic,
    partition: o.partition,
    errorCode: 0,
  }));
}
