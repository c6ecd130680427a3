import type {
  Buffer as CodefeedrBuffer,
  BufferAdmin,
  BufferCapabilities,
  BufferConsumer,
  BufferProducer,
  ConsumerOptions,
  ProducerOptions,
  TopicDescription,
  TopicSpec,
} from '@codefeedr/core';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import type { KafkaBufferConfig } from './buffer.js';
import {
  hasKafkaError,
  type PlatformaticBaseOptions,
  platformaticOptionsOf,
  probePlatformatic,
  unavailableAs,
} from './platformatic-client.js';
import { PlatformaticBufferConsumer } from './platformatic-consumer.js';
import { PlatformaticBufferProducer } from './platformatic-producer.js';
import { KnownTopics, untilLeadersElected } from './known-topics.js';
import { OpenResources } from './open-resources.js';

export const PLATFORMATIC_CAPABILITIES: BufferCapabilities = { transactions: true, replay: true };

/**
 * The Kafka buffer on @platformatic/kafka (`client: platformatic`): the same topics, the same
 * partitioning (murmur2 of the key), the same consumer groups and commits as the kafkajs one,
 * so either client can read what the other wrote, and the same transactions (exactly-once).
 * It has no Kafka state store (that one is written on kafkajs); see the README.
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
  /** Open consumers by group: a transaction's offsets go to their group's coordinator. */
  private readonly consumersByGroup = new Map<string, PlatformaticBufferConsumer>();

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
    const transactional = options.transactional === true;
    const c = this.config;
    const producer = new Producer({
      ...this.base,
      clientId: `${this.base.clientId}-${options.clientId}`,
      idempotent: transactional || c.idempotent,
      acks: transactional ? -1 : c.acks,
      autocreateTopics: false,
      ...(c.compression === 'none' ? {} : { compression: c.compression }),
      // The client sends its request timeout as the transaction timeout too.
      ...(transactional
        ? {
            transactionalId: this.transactionalIdOf(options.clientId),
            timeout: Math.max(c.requestTimeoutMs, c.transactionTimeoutMs),
          }
        : {}),
    });
    return this.resources.track(
      new PlatformaticBufferProducer(producer, options.clientId, transactional, {
        acks: transactional ? -1 : c.acks,
        prepareTopic: (topic) => this.topics.ready(topic),
        groupCoordinator: (group) => this.groupCoordinator(group),
      }),
    );
  }

  /** The transactional id of the producer with `clientId`, as on kafkajs. */
  transactionalIdOf(clientId: string): string {
    return `${this.config.transactionalIdPrefix}-${clientId}`;
  }

  /** The coordinator of `group`: known to its consumer here, else asked of the cluster. */
  private async groupCoordinator(group: string): Promise<number> {
    const consumer = this.consumersByGroup.get(group);
    if (consumer !== undefined) return consumer.groupCoordinator();
    const lookup = new Consumer({
      ...this.base,
      clientId: `${this.base.clientId}-lookup`,
      groupId: group,
    });
    try {
      return await lookup.findGroupCoordinator();
    } finally {
      await lookup.close(true).catch(() => undefined);
    }
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
    this.consumersByGroup.set(options.group, consumer);
    const close = consumer.close.bind(consumer);
    consumer.close = async () => {
      if (this.consumersByGroup.get(options.group) === consumer)
        this.consumersByGroup.delete(options.group);
      await close();
    };
    return this.resources.track(consumer);
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
    const admin = this.adminClient;
    this.adminClient = undefined;
    await admin?.close().catch(() => undefined);
  }
}
