import {
  TransactionFencedError,
  type BufferMessage,
  type BufferProducer,
  type BufferTransaction,
  type TopicPartitionOffset,
} from '@codefeedr/core';
import { murmur2Partition } from '@codefeedr/core/buffer';
import type { CompressionTypes, Message, Producer, RecordMetadata, Transaction } from 'kafkajs';
import { isKafkaProducerFencedError } from './client-config.js';
import { KafkaNotTransactionalError, KafkaSendIncompleteError } from './errors.js';
import { SerialSends } from './serial-sends.js';

export interface KafkaProducerSettings {
  acks: -1 | 0 | 1;
  compression: CompressionTypes;
  /** Resolves once the topic exists (creating it on first use), with its partition count. */
  prepareTopic: (topic: string) => Promise<number>;
}

/** Round-robin position for keyless records, per producer. */
export interface Spread {
  next: number;
}

/**
 * One kafkajs producer. Every record gets its partition here: the record's explicit one, else
 * murmur2 of its key (what kafkajs's default partitioner and the Java client compute, so a
 * key lands on the same partition whichever client wrote it), else round-robin. Knowing the
 * partitions lets each send be checked against the broker's answer: kafkajs (2.2.4) retries
 * a failed broker's share of a send only to brokers that had not answered yet, so when a
 * leader dies and its partitions move to a broker that already acknowledged its part, that
 * share would silently never be written. Whatever is missing from the answer is sent again
 * (it was never written, so the idempotent producer cannot duplicate it).
 *
 * Sends are serialised: the idempotent producer's per-partition sequence numbers must not
 * interleave, and the runtime awaits each batch anyway.
 */
export class KafkaBufferProducer implements BufferProducer {
  private readonly sends = new SerialSends();
  private readonly spread: Spread = { next: Math.floor(Math.random() * 1_000_000) };

  constructor(
    private readonly producer: Producer,
    private readonly clientId: string,
    private readonly transactional: boolean,
    private readonly settings: KafkaProducerSettings,
  ) {}

  send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return this.sends.run(async () => {
      const partitions = await this.settings.prepareTopic(topic);
      const { acks, compression } = this.settings;
      await sendPartitioned(topic, messages, partitions, this.spread, acks, (batch) =>
        this.producer.send({ topic, messages: batch, acks, compression }),
      );
    });
  }

  async beginTransaction(): Promise<BufferTransaction> {
    if (!this.transactional) throw new KafkaNotTransactionalError(this.clientId);
    await this.sends.idle();
    const transaction = await fencedAs(this.clientId, this.producer.transaction());
    return new KafkaBufferTransaction(transaction, this.clientId, this.settings, this.spread);
  }

  async close(): Promise<void> {
    await this.sends.idle();
    await this.producer.disconnect();
  }
}

/**
 * Besides a fenced epoch, what the coordinator answers a transaction it aborted for a newer
 * producer with this id (the transaction is gone either way; the runtime recovers the same).
 */
const ABORTED_BY_COORDINATOR = new Set(['INVALID_TXN_STATE', 'INVALID_PRODUCER_ID_MAPPING']);

/** A fenced producer's error as core's TransactionFencedError (the runtime recovers from it). */
async function fencedAs<T>(clientId: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    const type = (error as { type?: unknown }).type;
    const fenced =
      isKafkaProducerFencedError(error) ||
      (typeof type === 'string' && ABORTED_BY_COORDINATOR.has(type));
    throw fenced ? new TransactionFencedError(clientId, error) : error;
  }
}

class KafkaBufferTransaction implements BufferTransaction {
  constructor(
    private readonly transaction: Transaction,
    private readonly clientId: string,
    private readonly settings: KafkaProducerSettings,
    private readonly spread: Spread,
  ) {}

  async send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const partitions = await this.settings.prepareTopic(topic);
    const compression = this.settings.compression;
    // Chunked by bytes as plain sends are: one batch's outputs and shards can exceed the
    // broker's max message size, which refuses the produce and fails the stage.
    await fencedAs(
      this.clientId,
      sendPartitioned(topic, messages, partitions, this.spread, -1, (batch) =>
        this.transaction.send({ topic, messages: batch, acks: -1, compression }),
      ),
    );
  }

  async sendOffsets(group: string, positions: readonly TopicPartitionOffset[]): Promise<void> {
    if (positions.length === 0) return;
    const topics = new Map<string, { partition: number; offset: string }[]>();
    for (const { topic, partition, offset } of positions) {
      const list = topics.get(topic) ?? [];
      list.push({ partition, offset });
      topics.set(topic, list);
    }
    await fencedAs(
      this.clientId,
      this.transaction.sendOffsets({
        consumerGroupId: group,
        topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })),
      }),
    );
  }

  async commit(): Promise<void> {
    await fencedAs(this.clientId, this.transaction.commit());
  }

  async abort(): Promise<void> {
    await this.transaction.abort();
  }
}

const CHUNK_BYTES = 900_000;
/** A Kafka v2 record's framing at most (length, attributes, deltas, key/value lengths, header count). */
const RECORD_FRAMING_BYTES = 40;
/** A record header's framing at most (its key and value lengths). */
const HEADER_FRAMING_BYTES = 10;

const byteLength = (data: string | Buffer | Uint8Array | null | undefined): number =>
  data == null ? 0 : typeof data === 'string' ? Buffer.byteLength(data) : data.length;

/**
 * A record's size in its record batch, at most: its value, key and headers with their framing.
 * The broker bounds a partition's batch (message.max.bytes), and with small records the keys,
 * headers and framing can outweigh the values.
 */
function recordBytes(m: Message): number {
  let bytes = RECORD_FRAMING_BYTES + byteLength(m.value as Buffer | null) + byteLength(m.key);
  if (m.headers !== undefined)
    for (const name in m.headers) {
      bytes += HEADER_FRAMING_BYTES + Buffer.byteLength(name);
      const value = m.headers[name];
      if (Array.isArray(value))
        for (const v of value) bytes += HEADER_FRAMING_BYTES + byteLength(v);
      else bytes += byteLength(value as string | Buffer | undefined);
    }
  return bytes;
}

/**
 * Consecutive runs of `messages` whose records add up to at most CHUNK_BYTES (at least one
 * each), so no partition's record batch in one request is over the broker's 1 MiB default.
 */
function byteChunks(messages: Message[]): Message[][] {
  const chunks: Message[][] = [];
  let current: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = recordBytes(m);
    if (current.length > 0 && bytes + size > CHUNK_BYTES) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Sends `messages` to `topic` as every producer of this plugin does, on either client: each
 * record given its partition (toKafkaMessages), one request per ~900 KB of records (a bigger
 * one would exceed the broker's message.max.bytes, 1 MiB by default, and be refused whole),
 * each request checked against the brokers' answer (sendCompletely).
 */
export async function sendPartitioned(
  topic: string,
  messages: readonly BufferMessage[],
  partitions: number,
  spread: Spread,
  acks: -1 | 0 | 1,
  send: (messages: Message[]) => Promise<RecordMetadata[]>,
): Promise<void> {
  for (const chunk of byteChunks(toKafkaMessages(messages, partitions, spread)))
    await sendCompletely(topic, chunk, acks, send);
}

/**
 * Sends `messages` (each with its partition set) and re-sends those whose partition is
 * missing from the broker's acknowledgement, up to a bound. See KafkaBufferProducer.
 */
export async function sendCompletely(
  topic: string,
  messages: Message[],
  acks: -1 | 0 | 1,
  send: (messages: Message[]) => Promise<RecordMetadata[]>,
): Promise<void> {
  let pending = messages;
  for (let attempt = 0; ; attempt++) {
    const acknowledged = await send(pending);
    if (acks === 0) return;
    const written = new Set<number>();
    for (const record of acknowledged) if (record.errorCode === 0) written.add(record.partition);
    let complete = true;
    for (let i = 0; i < pending.length && complete; i++)
      complete = written.has(pending[i]!.partition!);
    if (complete) return;
    const missing = pending.filter((m) => !written.has(m.partition!));
    const unacknowledged = [...new Set(missing.map((m) => m.partition!))];
    process.stderr.write(
      `${JSON.stringify({ level: 'warn', source: 'codefeedr.kafka', message: 'records left unacknowledged by a send (leader change); sending them again', topic, partitions: unacknowledged, records: missing.length })}\n`,
    );
    if (attempt >= 10) {
      throw new KafkaSendIncompleteError(topic, unacknowledged);
    }
    pending = missing;
  }
}

/**
 * Contract messages to kafkajs messages, each with its partition: explicit, else murmur2 of
 * the key, else round-robin. Values are wrapped as Buffers without copying.
 */
export function toKafkaMessages(
  messages: readonly BufferMessage[],
  partitions: number,
  spread: Spread,
): Message[] {
  const out = new Array<Message>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const value = Buffer.isBuffer(m.value)
      ? m.value
      : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength);
    const partition =
      m.partition ??
      (m.key !== undefined ? murmur2Partition(m.key, partitions) : spread.next++ % partitions);
    const message: Message = { value, timestamp: String(m.timestamp), partition };
    if (m.key !== undefined) message.key = m.key;
    if (m.headers !== undefined) message.headers = m.headers;
    out[i] = message;
  }
  return out;
}
