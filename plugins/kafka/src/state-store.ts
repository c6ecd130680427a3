import { randomUUID } from 'node:crypto';
import {
  parseStateShard,
  StateFencedError,
  type StateShard,
  type StateStore,
  type TopicSpec,
} from '@codefeedr/core';
import type {
  Admin,
  CompressionTypes,
  Consumer,
  Kafka,
  KafkaMessage,
  Producer,
  Transaction,
} from 'kafkajs';
import { isKafkaProducerFencedError } from './client-config.js';
import { KafkaStateLoadTimeoutError, KafkaStateShardTooLargeError } from './errors.js';

/**
 * The largest shard (JSON bytes) one changelog record holds: the state topics' max.message.bytes.
 * Under the broker's socket.request.max.bytes (100 MiB by default), which bounds a produce request.
 */
export const KAFKA_STATE_SHARD_MAX_BYTES = 64 * 1024 * 1024;

/** Room for the record batch around the largest shard. */
const BATCH_OVERHEAD_BYTES = 64 * 1024;

/** The configs of a state topic: a changelog whose compaction keeps each partition's last shard. */
const STATE_TOPIC_CONFIG: Readonly<Record<string, string>> = {
  'cleanup.policy': 'compact',
  'max.message.bytes': String(KAFKA_STATE_SHARD_MAX_BYTES + BATCH_OVERHEAD_BYTES),
};

/** What the store uses of its buffer: the client, its admin and topic creation. */
export interface KafkaStateStoreContext {
  kafka: Kafka;
  admin: () => Promise<Admin>;
  /** Creates the topic unless it exists; resolves with its partition count once all have leaders. */
  createTopic: (spec: TopicSpec) => Promise<number>;
  /** A kafkajs connect, with an unreachable cluster reported as KafkaUnavailableError. */
  connecting: (connect: Promise<void>) => Promise<void>;
  transactionalIdPrefix: string;
  transactionTimeoutMs: number;
  compression: CompressionTypes;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitTimeMs: number;
  /** How long a load may take to join its reader's group and read to the partition's end. */
  loadTimeoutMs: number;
}

/** This worker's hold on one partition's state: the producer that fenced the previous owner. */
interface Ownership {
  producer: Producer;
  /** The version last read or written: a save must name it (no read per save). */
  version: number;
}

const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_');

/**
 * Partition state shards in Kafka, as Kafka Streams keeps a store's changelog: one compacted
 * topic per stage, `<pipeline>.<stage>.state`, whose partition p holds the shards of input
 * partition p, one record per save keyed by p. Compaction keeps the last one.
 *
 * Kafka has no compare-and-set, so a save is fenced the way Kafka fences zombie producers: the
 * worker that loads partition p initialises the transactional producer
 * `<transactionalIdPrefix>-state-<pipeline>-<stage>-<p>`, which bumps its epoch and fences
 * (and aborts the open transaction of) any previous owner's producer with that id; each save
 * is a transaction of one record, and a fenced producer's save fails with StateFencedError.
 * A save must also follow the version this worker last read or wrote (kept in memory).
 *
 * Created by `KafkaBuffer.stateStore()` (RunOptions `stateStore: 'buffer'`).
 */
export class KafkaStateStore implements StateStore {
  readonly kind = 'kafka';
  private readonly owned = new Map<string, Ownership>();
  /** Partitions whose producer was fenced: no save until a load takes the partition again. */
  private readonly fenced = new Map<string, number>();
  /** Partition counts of state topics as last seen. */
  private readonly partitionCounts = new Map<string, number>();
  private readonly readers = new Set<Consumer>();
  private closed = false;

  /** @internal Use `KafkaBuffer.stateStore()`. */
  constructor(private readonly context: KafkaStateStoreContext) {}

  /** The changelog topic of a stage's state. */
  topicOf(pipeline: string, stage: string): string {
    return `${safeName(pipeline)}.${safeName(stage)}.state`;
  }

  /** The transactional id of the producer that writes one partition's state. */
  transactionalIdOf(pipeline: string, stage: string, partition: number): string {
    return `${this.context.transactionalIdPrefix}-state-${pipeline}-${stage}-${partition}`;
  }

  /** True once `close()` ran (the buffer then makes a new store when asked for one). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Takes the partition over (its producer fences the previous owner's), then reads its
   * changelog partition to the end (read_committed) and returns the last shard.
   */
  async load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined> {
    const id = this.transactionalIdOf(pipeline, stage, partition);
    await this.release(id);
    const producer = await this.fence(id);
    try {
      const shard = await this.readLast(this.topicOf(pipeline, stage), partition);
      this.owned.set(id, { producer, version: shard?.version ?? 0 });
      this.fenced.delete(id);
      return shard;
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Writes `shard` as a transaction of one record; StateFencedError when another worker has
   * loaded the partition since (this producer is fenced) or `shard.version - 1` is not the
   * version this worker last read or wrote.
   */
  async save(pipeline: string, stage: string, partition: number, shard: StateShard): Promise<void> {
    const id = this.transactionalIdOf(pipeline, stage, partition);
    const expected = shard.version - 1;
    const wasFenced = this.fenced.get(id);
    if (wasFenced !== undefined) throw new StateFencedError(stage, partition, wasFenced, expected);
    // A save with no load first (a store used on its own) takes the partition as a load would.
    if (!this.owned.has(id)) await this.load(pipeline, stage, partition);
    const ownership = this.owned.get(id)!;
    if (ownership.version !== expected)
      throw new StateFencedError(stage, partition, ownership.version, expected);

    const topic = this.topicOf(pipeline, stage);
    const value = Buffer.from(JSON.stringify(shard));
    if (value.length > KAFKA_STATE_SHARD_MAX_BYTES)
      throw new KafkaStateShardTooLargeError(
        topic,
        partition,
        value.length,
        KAFKA_STATE_SHARD_MAX_BYTES,
      );
    await this.ensurePartition(topic, partition);
    let transaction: Transaction | undefined;
    try {
      transaction = await ownership.producer.transaction();
      await transaction.send({
        topic,
        acks: -1,
        compression: this.context.compression,
        messages: [{ key: String(partition), value, partition, timestamp: String(shard.takenAt) }],
      });
      await transaction.commit();
    } catch (error) {
      if (transaction?.isActive()) await transaction.abort().catch(() => undefined);
      if (!isKafkaProducerFencedError(error)) throw error;
      // A newer producer with this transactional id exists: another worker loaded the partition.
      if (this.owned.get(id) === ownership) await this.release(id);
      this.fenced.set(id, ownership.version);
      throw new StateFencedError(stage, partition, ownership.version, expected);
    }
    ownership.version = shard.version;
  }

  /** Disconnects every producer and reader this store made. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const producers = [...this.owned.values()].map((o) => o.producer);
    this.owned.clear();
    await Promise.allSettled([
      ...producers.map((p) => p.disconnect()),
      ...[...this.readers].map((r) => r.disconnect()),
    ]);
  }

  private async release(id: string): Promise<void> {
    const previous = this.owned.get(id);
    this.owned.delete(id);
    await previous?.producer.disconnect().catch(() => undefined);
  }

  /**
   * A transactional producer with `id`, initialised: Kafka bumps the id's epoch (fencing the
   * producer of whoever held the partition) and aborts its open transaction, if any.
   */
  private async fence(id: string): Promise<Producer> {
    const producer = this.context.kafka.producer({
      transactionalId: id,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.context.transactionTimeoutMs,
      allowAutoTopicCreation: false,
    });
    try {
      await this.context.connecting(producer.connect());
      // kafkajs initialises the transactional producer id on its first transaction; an empty
      // one is ended without a request to the broker.
      const transaction = await producer.transaction();
      await transaction.abort();
      return producer;
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /** Creates the state topic with at least `partition + 1` partitions, or grows it to that. */
  private async ensurePartition(topic: string, partition: number): Promise<void> {
    if ((this.partitionCounts.get(topic) ?? 0) > partition) return;
    const spec = { name: topic, partitions: partition + 1, config: STATE_TOPIC_CONFIG };
    let count = await this.context.createTopic(spec);
    if (count <= partition) {
      // Grown rather than sized up front: every record names its partition (the input
      // partition), never a hash of the key, so added partitions move no stored shard.
      const admin = await this.context.admin();
      await admin
        .createPartitions({ topicPartitions: [{ topic, count: partition + 1 }] })
        .catch((error: unknown) => {
          // Another worker grew it meanwhile; the count is checked again below.
          if ((error as { type?: unknown }).type !== 'INVALID_PARTITIONS') throw error;
        });
      count = await this.context.createTopic(spec);
    }
    this.partitionCounts.set(topic, count);
  }

  /** The last shard in `partition` of `topic` up to its last stable offset, if any. */
  private async readLast(topic: string, partition: number): Promise<StateShard | undefined> {
    const admin = await this.context.admin();
    if (!(await admin.listTopics()).includes(topic)) return undefined;
    // Admin offsets are read_committed: `high` is the last stable offset. This worker's
    // producer has just aborted any open transaction of the partition's previous owner.
    const offsets = await admin.fetchTopicOffsets(topic);
    this.partitionCounts.set(topic, Math.max(this.partitionCounts.get(topic) ?? 0, offsets.length));
    const range = offsets.find((o) => o.partition === partition);
    if (range === undefined || BigInt(range.high) <= BigInt(range.low)) return undefined;
    const last = await this.readPartition(topic, partition, BigInt(range.high));
    if (last?.value == null) return undefined;
    return parseStateShard(
      last.value.toString('utf8'),
      `Kafka topic ${topic} partition ${partition}`,
    );
  }

  /**
   * Reads `partition` of `topic` from the beginning up to `end` and returns its last record
   * for the partition's key. kafkajs reads only in a consumer group, so the read has a group
   * of its own (no offsets committed: the broker forgets it when the reader leaves) and
   * pauses the other partitions it is given.
   */
  private async readPartition(
    topic: string,
    partition: number,
    end: bigint,
  ): Promise<KafkaMessage | undefined> {
    const key = String(partition);
    const reader = this.context.kafka.consumer({
      groupId: `${this.context.transactionalIdPrefix}-state-reader-${randomUUID()}`,
      sessionTimeout: this.context.sessionTimeoutMs,
      heartbeatInterval: this.context.heartbeatIntervalMs,
      maxWaitTimeInMs: this.context.maxWaitTimeMs,
      maxBytesPerPartition: KAFKA_STATE_SHARD_MAX_BYTES + BATCH_OVERHEAD_BYTES,
      maxBytes: KAFKA_STATE_SHARD_MAX_BYTES + BATCH_OVERHEAD_BYTES,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
    this.readers.add(reader);
    let last: KafkaMessage | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () =>
            reject(new KafkaStateLoadTimeoutError(topic, partition, this.context.loadTimeoutMs)),
          this.context.loadTimeoutMs,
        );
        reader.on(reader.events.GROUP_JOIN, ({ payload }) => {
          const others = (payload.memberAssignment[topic] ?? []).filter((p) => p !== partition);
          if (others.length > 0) reader.pause([{ topic, partitions: others }]);
        });
        // Emitted for every fetched batch of the partition, also one of only transaction
        // markers (which eachBatch never sees): its last offset says how far the read got.
        reader.on(reader.events.END_BATCH_PROCESS, ({ payload }) => {
          if (payload.partition === partition && BigInt(payload.lastOffset) + 1n >= end) resolve();
        });
        reader.on(reader.events.CRASH, ({ payload }) => {
          if (!payload.restart) reject(payload.error);
        });
        void (async () => {
          await this.context.connecting(reader.connect());
          await reader.subscribe({ topics: [topic], fromBeginning: true });
          await reader.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              if (batch.partition !== partition) return;
              for (const message of batch.messages)
                if (BigInt(message.offset) < end && message.key?.toString('utf8') === key)
                  last = message;
            },
          });
        })().catch(reject);
      });
      return last;
    } finally {
      clearTimeout(timer);
      this.readers.delete(reader);
      await reader.disconnect().catch(() => undefined);
    }
  }
}
