import type {
  Buffer as CodefeedrBuffer,
  BufferAdmin,
  BufferCapabilities,
  BufferConsumer,
  BufferProducer,
  ConsumerOptions,
  ProducerOptions,
  StateStore,
  TopicDescription,
  TopicSpec,
} from '@codefeedr/core';
import { z } from '@codefeedr/core';
import kafkajs from 'kafkajs';
import type { Admin, Kafka } from 'kafkajs';
import {
  connectOrUnavailable,
  createKafkaClient,
  kafkaClientConfigSchema,
  probeKafka,
} from './client-config.js';
import { KafkaBufferConsumer } from './consumer.js';
import { KafkaCompressionCodecMissingError } from './errors.js';
import { KafkaBufferProducer } from './producer.js';
import { KafkaStateStore } from './state-store.js';
import { KnownTopics, untilLeadersElected } from './known-topics.js';
import { OpenResources } from './open-resources.js';

const { CompressionTypes, CompressionCodecs } = kafkajs;

/**
 * Topics this buffer creates keep records until they are deleted (`retention.ms` -1) unless
 * `topicConfig` or the stage's `bufferConfig` says otherwise. Kafka's time retention measures
 * a segment by its newest record timestamp, and a record's timestamp here is its event time:
 * replayed GH Archive events from 2015 were deleted minutes after they were sent, before the
 * next stage had read them, and that stage skipped ahead to the new log start (silent loss).
 * Kafka Streams keeps its repartition topics the same way.
 */
const BUFFER_TOPIC_DEFAULTS: Readonly<Record<string, string>> = { 'retention.ms': '-1' };

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
} as const;

/** kafkajs lists every codec, but the ones it lacks throw when asked for their implementation. */
function codecRegistered(type: number): boolean {
  const factory = CompressionCodecs[type as keyof typeof CompressionCodecs];
  if (factory === undefined) return false;
  try {
    factory();
    return true;
  } catch {
    return false;
  }
}

export const kafkaBufferConfigSchema = kafkaClientConfigSchema
  .extend({
    partitions: z
      .number()
      .int()
      .positive()
      .default(6)
      .describe(
        "Partitions of a topic created by a send because no stage ensured it (kafka-output targets, inline dead-letter topics). Stage topics get their stage's `partitions` option (default 1).",
      ),
    replicationFactor: z
      .number()
      .int()
      .min(-1)
      .refine((n) => n !== 0, 'must be -1 (broker default) or at least 1')
      .default(-1)
      .describe('Replication factor of created topics; -1 = the broker default.'),
    topicConfig: z
      .record(z.string(), z.string())
      .default({})
      .describe('Kafka topic configs for created topics, e.g. { "min.insync.replicas": "2" }.'),
    compression: z
      .enum(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
      .default('none')
      .describe(
        'Batch compression; on kafkajs gzip is built in and the others need a registered codec, @platformatic/kafka has all five.',
      ),
    acks: z
      .union([z.literal(-1), z.literal(0), z.literal(1)])
      .default(-1)
      .describe('-1 = all in-sync replicas.'),
    idempotent: z.boolean().default(true).describe('Idempotent producer: retries never duplicate.'),
    transactionalIdPrefix: z.string().min(1).default('codefeedr'),
    transactionTimeoutMs: z.number().int().positive().default(60_000),
    sessionTimeoutMs: z.number().int().positive().default(10_000),
    heartbeatIntervalMs: z.number().int().positive().default(1_000),
    rebalanceTimeoutMs: z.number().int().positive().default(30_000),
    maxWaitTimeMs: z
      .number()
      .int()
      .positive()
      .default(100)
      .describe('Longest a fetch waits for data.'),
    maxBytesPerPartition: z.number().int().positive().default(1_048_576),
    maxBufferedRecords: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe('Consumer queue bound (backpressure).'),
    maxBufferedBytes: z
      .number()
      .int()
      .positive()
      .default(64 * 1_048_576)
      .describe(
        'Consumer queue bound in bytes of values and keys (backpressure): large records pause fetching before maxBufferedRecords is reached.',
      ),
    isolation: z.enum(['read_committed', 'read_uncommitted']).default('read_committed'),
    joinTimeoutMs: z.number().int().positive().default(30_000),
  })
  .refine((c) => !c.idempotent || c.acks === -1, {
    message: 'an idempotent producer needs acks -1; set idempotent: false to use acks 0 or 1',
    path: ['acks'],
  });

export type KafkaBufferConfig = z.output<typeof kafkaBufferConfigSchema>;

/** What the buffer on kafkajs can do. */
export const KAFKAJS_CAPABILITIES: BufferCapabilities = { transactions: true, replay: true };

/** Topics, producers and consumer groups on an Apache Kafka cluster, through kafkajs. */
export class KafkaBuffer implements CodefeedrBuffer {
  readonly kind = 'kafka';
  readonly capabilities = KAFKAJS_CAPABILITIES;
  readonly admin: BufferAdmin;
  private readonly kafka: Kafka;
  private adminConnection: Promise<Admin> | undefined;
  private readonly resources = new OpenResources();
  private readonly topics = new KnownTopics((topic) =>
    this.createTopic({ name: topic, partitions: this.config.partitions }),
  );
  private stateStoreOnce: KafkaStateStore | undefined;

  /**
   * @param owner - Who uses the buffer, as error messages name it: the pipeline's buffer, or
   *   a Kafka input or output stage (which each have their own).
   */
  constructor(
    readonly config: KafkaBufferConfig,
    readonly owner = 'the Kafka buffer',
  ) {
    if (config.client !== 'kafkajs')
      throw new TypeError(
        `KafkaBuffer is the kafkajs client; createKafkaBuffer makes the "${config.client}" one`,
      );
    this.kafka = createKafkaClient(config);
    const compression = config.compression;
    if (compression !== 'none' && !codecRegistered(COMPRESSION[compression])) {
      throw new KafkaCompressionCodecMissingError(compression);
    }
    this.admin = {
      ensureTopic: (spec) => this.ensureTopic(spec),
      describeTopic: (name) => this.describeTopic(name),
      deleteTopic: (name) => this.deleteTopic(name),
    };
  }

  /**
   * A buffer whose brokers answered a connect probe: an unreachable cluster fails here, at
   * once and with one KafkaUnavailableError, rather than in the first stage that uses it.
   */
  static async connect(config: KafkaBufferConfig, owner?: string): Promise<KafkaBuffer> {
    const buffer = new KafkaBuffer(config, owner);
    await probeKafka(config, buffer.owner);
    return buffer;
  }

  /** The shared admin client, connected on first use. */
  connectedAdmin(): Promise<Admin> {
    if (this.adminConnection === undefined) {
      const connection = (async () => {
        const admin = this.kafka.admin();
        await this.connecting(admin.connect());
        return admin;
      })();
      this.adminConnection = connection;
      // A failed connect is not kept: a retry of the operation connects again.
      connection.catch(() => {
        if (this.adminConnection === connection) this.adminConnection = undefined;
      });
    }
    return this.adminConnection;
  }

  /** A connect that found no broker becomes a KafkaUnavailableError naming this buffer's owner. */
  private connecting(connect: Promise<void>): Promise<void> {
    return connectOrUnavailable(connect, this.owner, this.config.brokers);
  }

  async producer(options: ProducerOptions): Promise<BufferProducer> {
    const transactional = options.transactional === true;
    const producer = this.kafka.producer({
      idempotent: transactional || this.config.idempotent,
      allowAutoTopicCreation: false,
      maxInFlightRequests: transactional || this.config.idempotent ? 1 : undefined,
      transactionTimeout: this.config.transactionTimeoutMs,
      ...(transactional ? { transactionalId: this.transactionalIdOf(options.clientId) } : {}),
    });
    await this.connecting(producer.connect());
    const wrapped = new KafkaBufferProducer(producer, options.clientId, transactional, {
      acks: transactional ? -1 : this.config.acks,
      compression: COMPRESSION[this.config.compression],
      prepareTopic: (topic) => this.topics.ready(topic),
    });
    return this.resources.track(wrapped);
  }

  async consumer(options: ConsumerOptions): Promise<BufferConsumer> {
    const consumer = new KafkaBufferConsumer(this.kafka, () => this.connectedAdmin(), options, {
      sessionTimeoutMs: this.config.sessionTimeoutMs,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      rebalanceTimeoutMs: this.config.rebalanceTimeoutMs,
      maxWaitTimeMs: this.config.maxWaitTimeMs,
      maxBytesPerPartition: this.config.maxBytesPerPartition,
      maxBufferedRecords: this.config.maxBufferedRecords,
      maxBufferedBytes: this.config.maxBufferedBytes,
      readUncommitted: this.config.isolation === 'read_uncommitted',
      joinTimeoutMs: this.config.joinTimeoutMs,
    });
    try {
      await this.connecting(consumer.open());
    } catch (error) {
      await consumer.close().catch(() => undefined);
      throw error;
    }
    return this.resources.track(consumer);
  }

  /** The transactional id of the producer with `clientId` (`<transactionalIdPrefix>-<clientId>`). */
  transactionalIdOf(clientId: string): string {
    return `${this.config.transactionalIdPrefix}-${clientId}`;
  }

  /**
   * Partition state in compacted topics on this cluster (RunOptions `stateStore: 'buffer'`),
   * on the buffer's client; closed with the buffer. See KafkaStateStore.
   */
  async stateStore(): Promise<StateStore> {
    if (this.stateStoreOnce === undefined || this.stateStoreOnce.isClosed) {
      const config = this.config;
      this.stateStoreOnce = this.resources.track(
        new KafkaStateStore({
          kafka: this.kafka,
          admin: () => this.connectedAdmin(),
          createTopic: (spec) => this.createTopic(spec),
          connecting: (connect) => this.connecting(connect),
          transactionalIdPrefix: config.transactionalIdPrefix,
          producerTransactionalId: (clientId) => this.transactionalIdOf(clientId),
          transactionTimeoutMs: config.transactionTimeoutMs,
          compression: COMPRESSION[config.compression],
          sessionTimeoutMs: config.sessionTimeoutMs,
          heartbeatIntervalMs: config.heartbeatIntervalMs,
          maxWaitTimeMs: config.maxWaitTimeMs,
          loadTimeoutMs: config.joinTimeoutMs + config.requestTimeoutMs,
        }),
      );
    }
    return this.stateStoreOnce;
  }

  private async ensureTopic(spec: TopicSpec): Promise<void> {
    await this.createTopic(spec);
  }

  /** Creates the topic unless it exists; resolves with its partition count once all have leaders. */
  private async createTopic(spec: TopicSpec): Promise<number> {
    const admin = await this.connectedAdmin();
    const config = { ...BUFFER_TOPIC_DEFAULTS, ...this.config.topicConfig, ...spec.config };
    // createTopics answers false (no error) when the topic exists, so concurrent workers are fine.
    await admin.createTopics({
      waitForLeaders: false,
      topics: [
        {
          topic: spec.name,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor ?? this.config.replicationFactor,
          configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
        },
      ],
    });
    const partitions = await this.waitForLeaders(admin, spec.name);
    this.topics.known(spec.name, partitions);
    return partitions;
  }

  /**
   * kafkajs's own waitForLeaders fails on the UNKNOWN_TOPIC_OR_PARTITION a broker answers
   * while a new topic propagates; this waits (bounded) until every partition has a leader.
   */
  private waitForLeaders(admin: Admin, topic: string): Promise<number> {
    return untilLeadersElected(topic, this.config.requestTimeoutMs, async () => {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      return (metadata.topics[0]?.partitions ?? []).map((p) => p.leader);
    });
  }

  private async describeTopic(name: string): Promise<TopicDescription | undefined> {
    const admin = await this.connectedAdmin();
    const topics = await admin.listTopics();
    if (!topics.includes(name)) return undefined;
    const metadata = await admin.fetchTopicMetadata({ topics: [name] });
    const topic = metadata.topics.find((t) => t.name === name);
    return topic ? { name, partitions: topic.partitions.length } : undefined;
  }

  private async deleteTopic(name: string): Promise<void> {
    const admin = await this.connectedAdmin();
    const topics = await admin.listTopics();
    this.topics.forget(name);
    if (!topics.includes(name)) return;
    await admin.deleteTopics({ topics: [name] });
  }

  async close(): Promise<void> {
    await this.resources.closeAll();
    const admin = await this.adminConnection?.catch(() => undefined);
    this.adminConnection = undefined;
    await admin?.disconnect();
  }
}
