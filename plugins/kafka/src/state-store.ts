import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  parseStateShard,
  StateFencedError,
  StateShardCorruptError,
  type StateShard,
  type StateStore,
  type StateTransactions,
  type StateWrite,
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
  /** The transactional id of the buffer's producer with this client id (KafkaBuffer.producer). */
  producerTransactionalId: (clientId: string) => string;
  transactionTimeoutMs: number;
  compression: CompressionTypes;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitTimeMs: number;
  /** How long a load may take to join its reader's group and read to the partition's end. */
  loadTimeoutMs: number;
}

/** This worker's hold on one partition's state. */
interface Ownership {
  /** The producer that fenced the previous owner and writes the saves (none: exactly-once). */
  producer: Producer | undefined;
  /** The version last read or written: a save must name it (no read per save). */
  version: number;
  /** Deltas stored after the partition's last whole shard. */
  deltas: number;
}

/** Names the transactional id that wrote a state record: a new owner fences it (exactly-once). */
const WRITER_HEADER = 'codefeedr-state-writer';

/** A partition's changelog as read: its last whole shard, the deltas after it, its last writer. */
interface Changelog {
  whole: KafkaMessage | undefined;
  deltas: KafkaMessage[];
  writer: string | undefined;
  /** The last stable offset the read went up to (0 for a topic or partition not there). */
  end: bigint;
  /**
   * The partition's high watermark as its fetches reported it (undefined: nothing was read).
   * Past `end`, a transaction is open or its commit markers are still being written.
   */
  highWatermark?: bigint;
}

/** How soon a load reads a partition again while a transaction on it is in flight. */
const IN_FLIGHT_RECHECK_MS = 50;

const safeName = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, '_');

/** The version a loaded shard stands at: its last delta's, else its own (0: nothing stored). */
const versionOf = (shard: StateShard | undefined): number =>
  (shard?.deltas?.at(-1) ?? shard)?.version ?? 0;

/**
 * Partition state shards in Kafka, as Kafka Streams keeps a store's changelog: one compacted
 * topic per stage, `<pipeline>.<stage>.state`, whose partition p holds the state of input
 * partition p. A whole shard is the record keyed `p`; an incremental save (the keys changed
 * since the save before) is keyed `p.delta.<n>`, n counting from 1 after each whole shard, so
 * compaction keeps the last whole shard and the deltas after it (older deltas are overwritten
 * by the next round's). A load reads the partition up to its last stable offset
 * (read_committed) and returns the whole shard with the deltas after it.
 *
 * Kafka has no compare-and-set, so a save is fenced the way Kafka fences zombie producers. At
 * least once, the worker that loads partition p initialises the transactional producer
 * `<transactionalIdPrefix>-state-<pipeline>-<stage>-<p>`, which bumps its epoch and fences
 * (and aborts the open transaction of) any previous owner's producer with that id; each save
 * is a transaction of one record, and a fenced producer's save fails with StateFencedError.
 * Exactly-once (`transactions`), the stage's own transactional producer writes the records in
 * the transactions that also hold its outputs and offsets; every record names its writer
 * (header `codefeedr-state-writer`), and a load fences the partition's last writer, which
 * aborts whatever that writer has open, before it reads. A save must also follow the version
 * this worker last read or wrote (kept in memory).
 *
 * Created by `KafkaBuffer.stateStore()` (RunOptions `stateStore: 'buffer'`).
 */
export class KafkaStateStore implements StateStore {
  readonly kind = 'kafka';
  readonly incremental = true;
  readonly transactions: StateTransactions = {
    load: (pipeline, stage, partition, writer) =>
      this.loadAsWriter(pipeline, stage, partition, writer),
    write: (pipeline, stage, partition, shard, writer) =>
      this.writeFor(pipeline, stage, partition, shard, writer),
    committed: (pipeline, stage, partition, shard) => {
      const id = this.transactionalIdOf(pipeline, stage, partition);
      const ownership = this.owned.get(id);
      if (ownership !== undefined) this.advance(ownership, shard);
      this.committedByMe.set(id, Math.max(this.committedByMe.get(id) ?? 0, shard.version));
    },
  };
  /**
   * Exactly-once: the newest version of each partition's shard this store's writer committed.
   * A commit returns before Kafka has written its markers, so a read right after it (the
   * partition revoked and assigned back to this worker) can stop at a last stable offset
   * before the commit and return the state as it was before: that worker would process the
   * records after it again and fire their windows twice. A load re-reads until it has this.
   */
  private readonly committedByMe = new Map<string, number>();
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
   * changelog partition to the end (read_committed): the last whole shard, with the deltas
   * saved after it.
   */
  async load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined> {
    const id = this.transactionalIdOf(pipeline, stage, partition);
    await this.release(id);
    const producer = await this.fence(id);
    try {
      const changelog = await this.readChangelog(this.topicOf(pipeline, stage), partition);
      return this.own(
        id,
        producer,
        this.shardOf(changelog, this.topicOf(pipeline, stage), partition),
      );
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
    if (this.owned.get(id)?.producer === undefined) await this.load(pipeline, stage, partition);
    const ownership = this.owned.get(id)!;
    const producer = ownership.producer!;
    const write = await this.writeFor(pipeline, stage, partition, shard, undefined);
    let transaction: Transaction | undefined;
    try {
      transaction = await producer.transaction();
      await transaction.send({
        topic: write.topic,
        acks: -1,
        compression: this.context.compression,
        messages: write.messages.map((m) => ({
          key: m.key,
          partition: m.partition,
          value: m.value as Buffer,
          timestamp: String(m.timestamp),
          headers: m.headers,
        })),
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
    this.advance(ownership, shard);
  }

  /**
   * Exactly-once load as `writer`: fences the partition's last writer (unless it is `writer`),
   * which aborts its open transaction, then reads what is committed; the claim names `writer`.
   */
  private async loadAsWriter(
    pipeline: string,
    stage: string,
    partition: number,
    writer: string,
  ): Promise<{ shard: StateShard | undefined; claim: StateWrite }> {
    const topic = this.topicOf(pipeline, stage);
    const self = this.context.producerTransactionalId(writer);
    const id = this.transactionalIdOf(pipeline, stage, partition);
    await this.release(id);
    // Every writer of the partition must be fenced before its state is read, or one could
    // still commit after the read: a worker that lost the partition in a rebalance and had
    // claimed it only just (its claim not yet stable, so the read shows the writer before it).
    // So: fence the last stable writer, read again while something past the stable end is in
    // flight (an open transaction, or commit markers on their way), and fence whoever the
    // read shows last, until the read ends where the partition does.
    const fenced = new Set<string>([self]);
    const deadline = Date.now() + this.context.loadTimeoutMs;
    let changelog = await this.readChangelog(topic, partition);
    for (;;) {
      const writer = changelog.writer;
      if (writer !== undefined && !fenced.has(writer)) {
        // Initialising a producer with the last writer's id aborts its open transaction (or
        // waits for the commit it began) and fails its next commit: nothing it wrote can
        // commit after this.
        const fencer = await this.fence(writer);
        await fencer.disconnect().catch(() => undefined);
        fenced.add(writer);
        // What became stable since the read (a commit that completed meanwhile, or the abort's
        // marker) is read now; compared with the read's own end, not a later one, or a commit
        // completing between the read and that later look would go unseen.
        const end = await this.stableEnd(topic, partition);
        if (end !== undefined && BigInt(end) > changelog.end)
          changelog = await this.readChangelog(topic, partition);
        continue;
      }
      const inFlight =
        changelog.highWatermark !== undefined && changelog.highWatermark > changelog.end;
      if (!inFlight) break;
      if (Date.now() > deadline)
        throw new KafkaStateLoadTimeoutError(topic, partition, this.context.loadTimeoutMs);
      await delay(IN_FLIGHT_RECHECK_MS);
      changelog = await this.readChangelog(topic, partition);
    }
    let shard = this.shardOf(changelog, topic, partition);
    // Our own last commit may not be stable yet (its markers are being written): read again
    // until it is. Each read is a group join and a fetch, so this is no busy loop.
    const mine = this.committedByMe.get(id) ?? 0;
    while (versionOf(shard) < mine) {
      if (Date.now() > deadline)
        throw new KafkaStateLoadTimeoutError(topic, partition, this.context.loadTimeoutMs);
      changelog = await this.readChangelog(topic, partition);
      shard = this.shardOf(changelog, topic, partition);
    }
    shard = this.own(id, undefined, shard);
    await this.ensurePartition(topic, partition);
    const claim = { writer: self, at: Date.now() };
    return {
      shard,
      claim: {
        topic,
        messages: [
          {
            key: `${partition}.owner`,
            partition,
            value: Buffer.from(JSON.stringify(claim)),
            timestamp: claim.at,
            headers: { [WRITER_HEADER]: self },
          },
        ],
      },
    };
  }

  /** The record that stores `shard` (whole or a delta) for `writer`'s transaction. */
  private async writeFor(
    pipeline: string,
    stage: string,
    partition: number,
    shard: StateShard,
    writer: string | undefined,
  ): Promise<StateWrite> {
    const id = this.transactionalIdOf(pipeline, stage, partition);
    const ownership = this.owned.get(id);
    const expected = shard.version - 1;
    if (ownership === undefined || ownership.version !== expected)
      throw new StateFencedError(stage, partition, ownership?.version ?? 0, expected);
    const topic = this.topicOf(pipeline, stage);
    const { deltas: _loaded, ...record } = shard; // what load added is not stored
    const value = Buffer.from(JSON.stringify(record));
    if (value.length > KAFKA_STATE_SHARD_MAX_BYTES)
      throw new KafkaStateShardTooLargeError(
        topic,
        partition,
        value.length,
        KAFKA_STATE_SHARD_MAX_BYTES,
      );
    await this.ensurePartition(topic, partition);
    const delta = shard.changedKeys !== undefined;
    const by = writer === undefined ? id : this.context.producerTransactionalId(writer);
    return {
      topic,
      messages: [
        {
          key: delta ? `${partition}.delta.${ownership.deltas + 1}` : String(partition),
          partition,
          value,
          timestamp: shard.takenAt,
          headers: { [WRITER_HEADER]: by },
        },
      ],
    };
  }

  /** `shard` is stored: the version this worker holds, and the deltas after the whole one. */
  private advance(ownership: Ownership, shard: StateShard): void {
    ownership.version = shard.version;
    ownership.deltas = shard.changedKeys === undefined ? 0 : ownership.deltas + 1;
  }

  /** Holds the partition at what `shard` says (none stored: version 0); returns `shard`. */
  private own(
    id: string,
    producer: Producer | undefined,
    shard: StateShard | undefined,
  ): StateShard | undefined {
    this.owned.set(id, {
      producer,
      version: versionOf(shard),
      deltas: shard?.deltas?.length ?? 0,
    });
    this.fenced.delete(id);
    return shard;
  }

  /** The whole shard with its deltas, parsed; a gap in the versions is corruption. */
  private shardOf(changelog: Changelog, topic: string, partition: number): StateShard | undefined {
    const where = `Kafka topic ${topic} partition ${partition}`;
    if (changelog.whole?.value == null) {
      if (changelog.deltas.length > 0)
        throw new StateShardCorruptError(
          where,
          new Error('a delta without the whole shard before it'),
        );
      return undefined;
    }
    const shard = parseStateShard(changelog.whole.value.toString('utf8'), where);
    const deltas: StateShard[] = [];
    let version = shard.version;
    for (const message of changelog.deltas) {
      const delta = parseStateShard(
        message.value!.toString('utf8'),
        `${where} offset ${message.offset}`,
      );
      // A delta of an earlier round that compaction has not yet replaced.
      if (delta.version <= shard.version) continue;
      if (delta.version !== version + 1)
        throw new StateShardCorruptError(
          `${where} offset ${message.offset}`,
          new Error(`version ${version + 1} is missing`),
        );
      deltas.push(delta);
      version = delta.version;
    }
    return deltas.length === 0 ? shard : { ...shard, deltas };
  }

  /** Disconnects every producer and reader this store made. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const producers = [...this.owned.values()].flatMap((o) => o.producer ?? []);
    this.owned.clear();
    await Promise.allSettled([
      ...producers.map((p) => p.disconnect()),
      ...[...this.readers].map((r) => r.disconnect()),
    ]);
  }

  private async release(id: string): Promise<void> {
    const previous = this.owned.get(id);
    this.owned.delete(id);
    await previous?.producer?.disconnect().catch(() => undefined);
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

  /** The last stable offset of `partition` of `topic` (admin offsets are read_committed). */
  private async stableEnd(topic: string, partition: number): Promise<string | undefined> {
    const admin = await this.context.admin();
    if (!(await admin.listTopics()).includes(topic)) return undefined;
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.find((o) => o.partition === partition)?.high;
  }

  /** What `partition` of `topic` holds up to its last stable offset. */
  private async readChangelog(topic: string, partition: number): Promise<Changelog> {
    const empty: Changelog = { whole: undefined, deltas: [], writer: undefined, end: 0n };
    const admin = await this.context.admin();
    if (!(await admin.listTopics()).includes(topic)) return empty;
    // Admin offsets are read_committed: `high` is the last stable offset. At least once, this
    // worker's producer has just aborted any open transaction of the partition's previous
    // owner; exactly-once, loadAsWriter fences the last writer and reads again.
    const offsets = await admin.fetchTopicOffsets(topic);
    this.partitionCounts.set(topic, Math.max(this.partitionCounts.get(topic) ?? 0, offsets.length));
    const range = offsets.find((o) => o.partition === partition);
    if (range === undefined) return empty;
    if (BigInt(range.high) <= BigInt(range.low)) return { ...empty, end: BigInt(range.high) };
    return this.readPartition(topic, partition, BigInt(range.high));
  }

  /**
   * Reads `partition` of `topic` from the beginning up to `end`: the last whole shard, the
   * deltas after it and the last writer. kafkajs reads only in a consumer group, so the read
   * has a group of its own (no offsets committed: the broker forgets it when the reader
   * leaves) and pauses the other partitions it is given.
   */
  private async readPartition(topic: string, partition: number, end: bigint): Promise<Changelog> {
    const wholeKey = String(partition);
    const deltaPrefix = `${partition}.delta.`;
    const ownerKey = `${partition}.owner`;
    const changelog: Changelog = { whole: undefined, deltas: [], writer: undefined, end };
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
          if (payload.partition !== partition) return;
          const highWatermark = BigInt(payload.highWatermark);
          if (changelog.highWatermark === undefined || highWatermark > changelog.highWatermark)
            changelog.highWatermark = highWatermark;
          if (BigInt(payload.lastOffset) + 1n >= end) resolve();
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
              for (const message of batch.messages) {
                if (BigInt(message.offset) >= end) continue;
                const key = message.key?.toString('utf8');
                if (key === wholeKey && message.value != null) {
                  changelog.whole = message;
                  changelog.deltas = [];
                } else if (key?.startsWith(deltaPrefix) === true && message.value != null)
                  changelog.deltas.push(message);
                else if (key !== ownerKey) continue;
                const writer = message.headers?.[WRITER_HEADER];
                if (writer !== undefined) changelog.writer = writer.toString();
              }
            },
          });
        })().catch(reject);
      });
      return changelog;
    } finally {
      clearTimeout(timer);
      this.readers.delete(reader);
      await reader.disconnect().catch(() => undefined);
    }
  }
}
