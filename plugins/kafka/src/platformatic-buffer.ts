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
import { Admin, Producer } from '@platformatic/kafka';
import { KafkaBuffer, type KafkaBufferConfig } from './buffer.js';
import {
  hasKafkaError,
  type PlatformaticBaseOptions,
  platformaticOptionsOf,
  probePlatformatic,
  unavailableAs,
} from './platformatic-client.js';
import { PlatformaticBufferConsumer } from './platformatic-consumer.js';
import { PlatformaticBufferProducer } from './platformatic-producer.js';
import { KafkaNotTransactionalError } from './errors.js';
import { KnownTopics, untilLeadersElected } from './known-topics.js';
import { OpenResources } from './open-resources.js';

/**
 * No transactions on this client: @platformatic/kafka 2.12.1's read_committed consumer lets
 * records of aborted transactions through (see the README, "Choosing the client"), so an
 * exactly-once stage's aborted output would reach the next stage.
 */
export const PLATFORMATIC_CAPABILITIES: BufferCapabilities = { transactions: false, replay: true };

/**
 * The Kafka buffer on @platformatic/kafka (`client: platformatic`): the same topics, the same
 * partitioning (murmur2 of the key), the same consumer groups and commits as the kafkajs one,
 * so either client can read what the other wrote. At-least-once only (no transactions, see
 * PLATFORMATIC_CAPABILITIES). Its state store is the Kafka state store, which is written on kafkajs: it runs on a kafkajs
 * connection of its own (fencing is by transactional id, whichever client holds it).
 */
export class PlatformaticKafkaBuffer implements CodefeedrBuffer {
  readonly kind = 'kafka';
  readonly capabilities = PLATFORMATIC_CAPABILITIES;
  readonly admin: BufferAdmin;
  private readonly base: PlatformaticBaseOptions;
  private adminClient: Admin | undefined;
  private readonly resources = new OpenResources();
  private readonly topics = new KnownTopics((topic) =>
    this.createTopic({ name: topic, partitions: this.config.partitions }),
  );
  /** The kafkajs buffer that holds the Kafka state store, made when a run asks for it. */
  private stateBuffer: KafkaBuffer | undefined;

  constructor(
    readonly config: KafkaBufferConfig,
    readonly owner = 'the Kafka buffer',
  ) {
    this.base = platformaticOptionsOf(config, undefined);
    this.admin = {
      ensureTopic: async (spec) => void (await this.createTopic(spec)),
      describeTopic: (name) => this.describeTopic(name),
      deleteTopic: (name) => this.deleteTopic(name),
    };
  }

  /** A buffer whose brokers answered a probe: an unreachable cluster fails here, at once. */
  static async connect(
    config: KafkaBufferConfig,
    owner?: string,
  ): Promise<PlatformaticKafkaBuffer> {
    const buffer = new PlatformaticKafkaBuffer(config, owner);
    await probePlatformatic(config, buffer.owner);
    return buffer;
  }

  private get adminOf(): Admin {
    this.adminClient ??= new Admin({ ...this.base, clientId: `${this.base.clientId}-admin` });
    return this.adminClient;
  }

  private reachable<T>(operation: Promise<T>): Promise<T> {
    return unavailableAs(operation, this.owner, this.config.brokers);
  }

  async producer(options: ProducerOptions): Promise<BufferProducer> {
    if (options.transactional === true) throw new KafkaNotTransactionalError(options.clientId);
    const c = this.config;
    const producer = new Producer({
      ...this.base,
      clientId: `${this.base.clientId}-${options.clientId}`,
      idempotent: c.idempotent,
      acks: c.acks,
      autocreateTopics: false,
      ...(c.compression === 'none' ? {} : { compression: c.compression }),
    });
    return this.resources.track(
      new PlatformaticBufferProducer(producer, {
        acks: c.acks,
        prepareTopic: (topic) => this.topics.ready(topic),
      }),
    );
  }

  async consumer(options: ConsumerOptions): Promise<BufferConsumer> {
    const c = this.config;
    const consumer = new PlatformaticBufferConsumer(
      { ...this.base, clientId: `${this.base.clientId}-${options.group}` },
      options,
      {
        sessionTimeoutMs: c.sessionTimeoutMs,
        heartbeatIntervalMs: c.heartbeatIntervalMs,
        rebalanceTimeoutMs: c.rebalanceTimeoutMs,
        maxWaitTimeMs: c.maxWaitTimeMs,
        maxBytesPerPartition: c.maxBytesPerPartition,
        maxBufferedRecords: c.maxBufferedRecords,
        maxBufferedBytes: c.maxBufferedBytes,
        readUncommitted: c.isolation === 'read_uncommitted',
        joinTimeoutMs: c.joinTimeoutMs,
      },
    );
    try {
      await this.reachable(consumer.open());
    } catch (error) {
      await consumer.close().catch(() => undefined);
      throw error;
    }
    return this.resources.track(consumer);
  }

  /**
   * Partition state in compacted topics (RunOptions `stateStore: 'buffer'`): the Kafka state
   * store, on a kafkajs connection of this buffer's settings (a codec kafkajs lacks is not
   * used for its own saves), closed with this buffer.
   */
  async stateStore(): Promise<StateStore> {
    this.stateBuffer ??= new KafkaBuffer(
      {
        ...this.config,
        client: 'kafkajs',
        compression: this.config.compression === 'gzip' ? 'gzip' : 'none',
      },
      this.owner,
    );
    return this.stateBuffer.stateStore();
  }

  /** Creates the topic unless it exists; resolves with its partition count once all have leaders. */
  private async createTopic(spec: TopicSpec): Promise<number> {
    const configs = Object.entries({
      'retention.ms': '-1', // as the kafkajs buffer: see BUFFER_TOPIC_DEFAULTS in buffer.ts
      ...this.config.topicConfig,
      ...spec.config,
    }).map(([name, value]) => ({ name, value }));
    try {
      await this.reachable(
        this.adminOf.createTopics({
          topics: [spec.name],
          partitions: spec.partitions,
          replicas: spec.replicationFactor ?? this.config.replicationFactor,
          configs,
        }),
      );
    } catch (error) {
      if (!hasKafkaError(error, 'TOPIC_ALREADY_EXISTS')) throw error;
    }
    const partitions = await this.waitForLeaders(spec.name);
    this.topics.known(spec.name, partitions);
    return partitions;
  }

  /** Waits (bounded) until every partition of a new topic has a leader. */
  private waitForLeaders(topic: string): Promise<number> {
    return untilLeadersElected(topic, this.config.requestTimeoutMs, async () => {
      const metadata = await this.adminOf.metadata({ topics: [topic], forceUpdate: true });
      return (metadata.topics.get(topic)?.partitions ?? []).map((p) => p?.leader ?? -1);
    });
  }

  private async describeTopic(name: string): Promise<TopicDescription | undefined> {
    const topics = await this.reachable(this.adminOf.listTopics());
    if (!topics.includes(name)) return undefined;
    const metadata = await this.adminOf.metadata({ topics: [name], forceUpdate: true });
    const topic = metadata.topics.get(name);
    return topic ? { name, partitions: topic.partitionsCount } : undefined;
  }

  private async deleteTopic(name: string): Promise<void> {
    const topics = await this.reachable(this.adminOf.listTopics());
    this.topics.forget(name);
    if (!topics.includes(name)) return;
    await this.adminOf.deleteTopics({ topics: [name] });
  }

  async close(): Promise<void> {
    await this.resources.closeAll();
    await this.stateBuffer?.close();
    this.stateBuffer = undefined;
    const admin = this.adminClient;
    this.adminClient = undefined;
    await admin?.close().catch(() => undefined);
  }
}
