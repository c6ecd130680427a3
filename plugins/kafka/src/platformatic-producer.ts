import {
  TransactionFencedError,
  type BufferMessage,
  type BufferProducer,
  type BufferTransaction,
  type TopicPartitionOffset,
} from '@codefeedr/core';
import type { Consumer, Message as PlatformaticMessage, Producer } from '@platformatic/kafka';

import type { Message, RecordMetadata } from 'kafkajs';
import { KafkaNotTransactionalError } from './errors.js';
import { hasKafkaError } from './platformatic-client.js';
import { sendPartitioned, type Spread } from './producer.js';
import { SerialSends } from './serial-sends.js';

/** The client's transaction (its class is not exported by name). */
type Transaction = Awaited<ReturnType<Producer['beginTransaction']>>;

export interface PlatformaticProducerSettings {
  acks: -1 | 0 | 1;
  /** Resolves once the topic exists (creating it on first use), with its partition count. */
  prepareTopic: (topic: string) => Promise<number>;
  /** The broker coordinating consumer group `group` (offsets committed in a transaction go there). */
  groupCoordinator: (group: string) => Promise<number>;
}

/**
 * What a coordinator answers a producer a newer one with its transactional id has fenced, or
 * a transaction it aborted for that newer producer (gone either way; the runtime recovers the
 * same, as on kafkajs).
 */
const FENCED = [
  'INVALID_PRODUCER_EPOCH',
  'PRODUCER_FENCED',
  'TRANSACTION_COORDINATOR_FENCED',
  'INVALID_TXN_STATE',
  'INVALID_PRODUCER_ID_MAPPING',
];

/** A fenced producer's error as core's TransactionFencedError (the runtime recovers from it). */
async function fencedAs<T>(clientId: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw hasKafkaError(error, ...FENCED) ? new TransactionFencedError(clientId, error) : error;
  }
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
    private readonly clientId: string,
    private readonly transactional: boolean,
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

  async beginTransaction(): Promise<BufferTransaction> {
    if (!this.transactional) throw new KafkaNotTransactionalError(this.clientId);
    await this.sends.idle();
    let transaction: Transaction;
    try {
      // A new producer's InitProducerId must carry no producer id or epoch (-1, -1): this
      // client sends 0 and 0 unless told, which a transactional id used before answers with
      // PRODUCER_FENCED. -1, -1 takes the id over and aborts what its last owner left open.
      transaction = await fencedAs(
        this.clientId,
        this.producer.beginTransaction({ producerId: -1n, producerEpoch: -1 }),
      );
    } catch (error) {
      // The client keeps a transaction whose start failed as its active one: drop it.
      await this.producer.transaction?.cancel().catch(() => undefined);
      throw error;
    }
    return new PlatformaticBufferTransaction(
      transaction,
      this.clientId,
      this.settings,
      this.spread,
    );
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
      const headers = new Map<Buffer, Buffer>();
      if (m.headers !== undefined)
        for (const name in m.headers) {
          const value = m.headers[name];
          if (value !== undefined) headers.set(Buffer.from(name), Buffer.from(value as string));
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

/**
 * A transaction on @platformatic/kafka. Offsets go in as the kafkajs transaction sends them:
 * with no group generation or member (Kafka checks neither then), so a rebalance never
 * aborts a transaction by itself; a worker that lost a partition is fenced by its new owner's
 * transactional id instead.
 */
class PlatformaticBufferTransaction implements BufferTransaction {
  /**
   * Whether anything went to the brokers. Kafka has no transaction to end until then (EndTxn
   * fails), and the client keeps a transaction whose end failed as its active one; so an
   * untouched transaction is only dropped here, as kafkajs does.
   */
  private touched = false;

  constructor(
    private readonly transaction: Transaction,
    private readonly clientId: string,
    private readonly settings: PlatformaticProducerSettings,
    private readonly spread: Spread,
  ) {}

  async send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const partitions = await this.settings.prepareTopic(topic);
    this.touched = true;
    await fencedAs(
      this.clientId,
      sendPartitioned(topic, messages, partitions, this.spread, -1, (batch) =>
        sendOnce(topic, batch, -1, (options) => this.transaction.send(options)),
      ),
    );
  }

  async sendOffsets(group: string, positions: readonly TopicPartitionOffset[]): Promise<void> {
    if (positions.length === 0) return;
    const coordinatorId = await this.settings.groupCoordinator(group);
    this.touched = true;
    // addConsumer reads only the group id (AddOffsetsToTxn).
    await fencedAs(this.clientId, this.transaction.addConsumer({ groupId: group } as Consumer));
    for (const { topic, partition, offset } of positions) {
      // addOffset commits the message's offset + 1: the next one to read.
      const message = {
        topic,
        partition,
        offset: BigInt(offset) - 1n,
        metadata: { consumer: { groupId: group, generationId: -1, memberId: '', coordinatorId } },
      } as unknown as PlatformaticMessage;
      await fencedAs(this.clientId, this.transaction.addOffset(message));
    }
  }

  async commit(): Promise<void> {
    if (!this.touched) return this.transaction.cancel();
    await fencedAs(this.clientId, this.transaction.commit());
  }

  async abort(): Promise<void> {
    if (!this.touched) return this.transaction.cancel();
    try {
      await this.transaction.abort();
    } finally {
      // A failed abort (a fenced producer) must not leave the client unable to begin another.
      if (!this.transaction.completed) await this.transaction.cancel();
    }
  }
}
