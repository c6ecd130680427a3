import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type {
  Buffer as CodefeedrBuffer,
  BufferAdmin,
  BufferConsumer,
  BufferMessage,
  BufferProducer,
  ConsumerOptions,
  ProducerOptions,
  StateStore,
  TopicDescription,
  TopicSpec,
} from '@codefeedr/core';
import { z } from '@codefeedr/core';
import { defineBuffer, murmur2Partition, UnknownPartitionError } from '@codefeedr/core/buffer';
import type { Redis } from 'ioredis';
import { openRedis, redisUrlSchema } from './connection.js';
import { RedisStateStore } from './state-store.js';
import {
  RedisClientClosedError,
  RedisSendError,
  RedisTopicNotFoundError,
  RedisTopicSpecError,
  RedisTransactionsUnsupportedError,
} from './errors.js';
import { defineHeartbeatCommand } from './group-membership.js';
import { FIND_TIMESTAMP_LUA, PRUNE_CONSUMERS_LUA, RedisStreamsConsumer } from './consumer.js';

export const redisBufferConfigSchema = z
  .object({
    url: redisUrlSchema,
    prefix: z
      .string()
      .regex(/^[^\s]+$/, 'no whitespace')
      .default('codefeedr')
      .describe('Prefix of every Redis key the buffer writes.'),
    partitions: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(1)
      .describe('Partitions of a topic the buffer creates on first use.'),
    maxLen: z
      .number()
      .int()
      .min(1)
      .default(1_000_000)
      .describe('Approximate entries kept per partition stream (XADD MAXLEN ~).'),
    autoCreateTopics: z
      .boolean()
      .default(true)
      .describe('Create a missing topic on first send instead of failing.'),
    consumerName: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Stable consumer name, so a restarted worker re-reads its own pending entries at once. Default: host-pid-random.',
      ),
    leaseMs: z
      .number()
      .int()
      .min(100)
      .default(10_000)
      .describe('A consumer that stops heartbeating loses its partitions after this long.'),
    heartbeatMs: z
      .number()
      .int()
      .min(10)
      .default(1_000)
      .describe('Heartbeat (and rebalance check) interval of each consumer.'),
    claimMinIdleMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe(
        'Entries delivered but not acknowledged for this long are reclaimed (XAUTOCLAIM) by the partition owner.',
      ),
    timestampSkewMs: z
      .number()
      .int()
      .min(0)
      .default(3_600_000)
      .describe(
        'A timestamp start scans entries appended from (timestamp - this) on for the first record with event time >= timestamp.',
      ),
    claimIntervalMs: z
      .number()
      .int()
      .min(10)
      .default(5_000)
      .describe('How often a consumer looks for such entries on its partitions.'),
  })
  .refine((config) => config.heartbeatMs < config.leaseMs, {
    message: 'heartbeatMs must be smaller than leaseMs',
    path: ['heartbeatMs'],
  });

export type RedisBufferConfig = z.output<typeof redisBufferConfigSchema>;
export type RedisBufferOptions = z.input<typeof redisBufferConfigSchema>;

interface TopicMeta {
  partitions: number;
  maxLen: number;
}

interface ProducerTopic extends TopicMeta {
  fetchedAt: number;
  /** Stream key of each partition, built once rather than per record. */
  streams: string[];
}

const ENSURE_TOPIC_LUA = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local partitions = tonumber(ARGV[2])
local maxLen = tonumber(ARGV[3])
if current then
  local meta = cjson.decode(current)
  if meta.partitions > partitions then partitions = meta.partitions end
  if ARGV[4] == '0' then maxLen = meta.maxLen end
end
local encoded = cjson.encode({ partitions = partitions, maxLen = maxLen })
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
`;

interface EnsureTopicCommand {
  codefeedrEnsureTopic(
    topicsKey: string,
    topic: string,
    partitions: number,
    maxLen: number,
    maxLenGiven: '1' | '0',
  ): Promise<string>;
}

/**
 * Appends records to one stream: ARGV = maxLen, then per record its field count and fields.
 * Ids are `*` (server time), so they stay ms-based and increasing.
 */
const XADD_BATCH_LUA = `
local maxLen = ARGV[1]
local i = 2
local n = #ARGV
while i <= n do
  local count = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxLen, '*', unpack(ARGV, i + 1, i + count))
  i = i + count + 1
end
return 1
`;

/** Records per script call: bounds how long one call holds the Redis event loop (~1 ms). */
const XADD_BATCH_RECORDS = 1_000;

interface XaddBatchPipeline {
  codefeedrXaddBatch(stream: string, ...args: (string | number | globalThis.Buffer)[]): unknown;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** How long a producer trusts its cached partition count (so it notices a topic growing). */
const METADATA_MAX_AGE_MS = 5_000;

/**
 * Redis layout, all under `<prefix>`:
 *   `<prefix>:<topic>:<partition>`      one stream per partition (entry fields v, t, k?, h?)
 *   `<prefix>:@topics`                  hash topic -> {"partitions":n,"maxLen":m}
 *   `<prefix>:@group:<group>:<topic>`   sorted set of live consumer leases (group-membership.ts)
 *   `<prefix>:@state:<pipeline>:<stage>` hash of partition state shards (state-store.ts)
 * Topic names may not start with `@`, so the layouts can never collide.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}
  stream(topic: string, partition: number): string {
    return `${this.prefix}:${topic}:${partition}`;
  }
  get topics(): string {
    return `${this.prefix}:@topics`;
  }
  members(group: string, topic: string): string {
    return `${this.prefix}:@group:${group}:${topic}`;
  }
  state(pipeline: string, stage: string): string {
    return `${this.prefix}:@state:${pipeline}:${stage}`;
  }
}

export function validateTopicName(topic: string): void {
  if (topic.length === 0) throw new RedisTopicSpecError(topic, 'the name is empty');
  if (topic.startsWith('@'))
    throw new RedisTopicSpecError(topic, 'names starting with "@" are reserved');
  if (/\s/.test(topic)) throw new RedisTopicSpecError(topic, 'the name contains whitespace');
}

/**
 * The Redis Streams buffer: each topic partition is a stream, consumer groups are Redis
 * consumer groups plus a lease-based partition assignment, offsets are stream ids.
 */
export class RedisBuffer implements CodefeedrBuffer {
  readonly kind = 'redis';
  readonly capabilities = { transactions: false, replay: true } as const;
  readonly admin: BufferAdmin;
  readonly keys: RedisKeys;
  private readonly children = new Set<{ close(): Promise<void> }>();
  private consumerCount = 0;
  private closed = false;
  private stateStoreOnce: RedisStateStore | undefined;

  static async connect(options: RedisBufferOptions = {}): Promise<RedisBuffer> {
    const config = redisBufferConfigSchema.parse(options);
    const client = await openRedis(config.url, 'codefeedr-buffer');
    return new RedisBuffer(config, client);
  }

  private constructor(
    readonly config: RedisBufferConfig,
    private readonly client: Redis,
  ) {
    this.keys = new RedisKeys(config.prefix);
    client.defineCommand('codefeedrEnsureTopic', { numberOfKeys: 1, lua: ENSURE_TOPIC_LUA });
    client.defineCommand('codefeedrXaddBatch', { numberOfKeys: 1, lua: XADD_BATCH_LUA });
    defineHeartbeatCommand(client);
    client.defineCommand('codefeedrFindTimestamp', { numberOfKeys: 1, lua: FIND_TIMESTAMP_LUA });
    client.defineCommand('codefeedrPruneConsumers', { numberOfKeys: 1, lua: PRUNE_CONSUMERS_LUA });
    this.admin = {
      ensureTopic: (spec) => this.ensureTopic(spec).then(() => undefined),
      describeTopic: (name) => this.describeTopic(name),
      deleteTopic: (name) => this.deleteTopic(name),
    };
  }

  async ensureTopic(spec: TopicSpec): Promise<TopicMeta> {
    this.assertOpen();
    validateTopicName(spec.name);
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1)
      throw new RedisTopicSpecError(
        spec.name,
        `partitions must be a positive integer, got ${spec.partitions}`,
      );
    const givenMaxLen = spec.config?.maxLen;
    const maxLen = givenMaxLen === undefined ? this.config.maxLen : Number(givenMaxLen);
    if (!Number.isInteger(maxLen) || maxLen < 1)
      throw new RedisTopicSpecError(
        spec.name,
        `config.maxLen must be a positive integer, got "${givenMaxLen}"`,
      );
    const encoded = await (this.client as unknown as EnsureTopicCommand).codefeedrEnsureTopic(
      this.keys.topics,
      spec.name,
      spec.partitions,
      maxLen,
      givenMaxLen === undefined ? '0' : '1',
    );
    return JSON.parse(encoded) as TopicMeta;
  }

  async topicMeta(name: string): Promise<TopicMeta | undefined> {
    this.assertOpen();
    const encoded = await this.client.hget(this.keys.topics, name);
    return encoded === null ? undefined : (JSON.parse(encoded) as TopicMeta);
  }

  async describeTopic(name: string): Promise<TopicDescription | undefined> {
    const meta = await this.topicMeta(name);
    return meta && { name, partitions: meta.partitions };
  }

  async deleteTopic(name: string): Promise<void> {
    const meta = await this.topicMeta(name);
    if (!meta) return;
    const streams = Array.from({ length: meta.partitions }, (_, p) => this.keys.stream(name, p));
    await this.client
      .multi()
      .hdel(this.keys.topics, name)
      .del(...streams)
      .exec();
  }

  async producer(options: ProducerOptions): Promise<BufferProducer> {
    this.assertOpen();
    if (options.transactional) throw new RedisTransactionsUnsupportedError();
    const producer = new RedisStreamsProducer(this, this.client, options.clientId, () =>
      this.children.delete(producer),
    );
    this.children.add(producer);
    return producer;
  }

  async consumer(options: ConsumerOptions): Promise<BufferConsumer> {
    this.assertOpen();
    const base =
      this.config.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const name = this.consumerCount++ === 0 ? base : `${base}-${this.consumerCount}`;
    for (const topic of options.topics) validateTopicName(topic);
    const consumer = await RedisStreamsConsumer.start({
      buffer: this,
      client: this.client,
      name,
      options,
      onClose: () => this.children.delete(consumer),
    });
    this.children.add(consumer);
    return consumer;
  }

  /** Partition state on this Redis (RunOptions `stateStore: 'buffer'`), on the buffer's connection. */
  async stateStore(): Promise<StateStore> {
    this.assertOpen();
    this.stateStoreOnce ??= new RedisStateStore(this.client, this.keys);
    return this.stateStoreOnce;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.children].map((child) => child.close()));
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private assertOpen(): void {
    if (this.closed) throw new RedisClientClosedError('buffer');
  }
}

/** Sends a batch as one pipeline of XADDs: one round trip, no await per record. */
export class RedisStreamsProducer implements BufferProducer {
  private readonly metadata = new Map<string, ProducerTopic>();
  private roundRobin = 0;
  private closed = false;

  constructor(
    private readonly buffer: RedisBuffer,
    private readonly client: Redis,
    readonly clientId: string,
    private readonly onClose: () => void,
  ) {}

  /**
   * One round trip per batch: records are grouped by partition and appended by a Lua
   * script, one call per partition and at most XADD_BATCH_RECORDS records (so Redis is never
   * blocked long), all calls in one pipeline. Measured 1.6-2.8x faster than a pipeline of
   * single XADDs (ioredis' per-command cost dominates); order per partition is kept.
   */
  async send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (this.closed) throw new RedisClientClosedError('producer');
    if (messages.length === 0) return;
    const meta = await this.topicMeta(topic);
    const calls: {
      partition: number;
      args: (string | number | globalThis.Buffer)[];
      records: number;
    }[] = [];
    const open = new Array<(typeof calls)[number] | undefined>(meta.partitions);
    for (const message of messages) {
      // An explicit partition (the runtime's end-of-stream markers) overrides key partitioning.
      const explicit = (message as { partition?: number | undefined }).partition;
      const partition =
        explicit !== undefined
          ? explicit
          : meta.partitions === 1
            ? 0
            : message.key === undefined
              ? this.roundRobin++ % meta.partitions
              : murmur2Partition(message.key, meta.partitions);
      if (!(Number.isInteger(partition) && partition >= 0 && partition < meta.partitions))
        throw new UnknownPartitionError(topic, partition, meta.partitions);
      let call = open[partition];
      if (call === undefined || call.records === XADD_BATCH_RECORDS) {
        call = { partition, args: [meta.maxLen], records: 0 };
        calls.push(call);
        open[partition] = call;
      }
      const value = message.value;
      const bytes = globalThis.Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const fields =
        4 + (message.key !== undefined ? 2 : 0) + (message.headers !== undefined ? 2 : 0);
      call.args.push(fields, 'v', bytes, 't', message.timestamp);
      if (message.key !== undefined) call.args.push('k', message.key);
      if (message.headers !== undefined) call.args.push('h', JSON.stringify(message.headers));
      call.records++;
    }
    const pipeline = this.client.pipeline() as unknown as XaddBatchPipeline;
    for (const call of calls)
      pipeline.codefeedrXaddBatch(meta.streams[call.partition]!, ...call.args);
    const results = await pipeline.exec();
    if (results === null)
      throw new RedisSendError(topic, messages.length, messages.length, 'pipeline aborted');
    let failed = 0;
    let firstError: unknown;
    results.forEach(([error], i) => {
      if (error) {
        failed += calls[i]!.records;
        firstError ??= error;
      }
    });
    if (failed > 0) throw new RedisSendError(topic, failed, messages.length, firstError);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose();
  }

  private async topicMeta(topic: string): Promise<ProducerTopic> {
    const cached = this.metadata.get(topic);
    if (cached && Date.now() - cached.fetchedAt < METADATA_MAX_AGE_MS) return cached;
    let meta = await this.buffer.topicMeta(topic);
    if (!meta) {
      if (!this.buffer.config.autoCreateTopics) throw new RedisTopicNotFoundError(topic);
      meta = await this.buffer.ensureTopic({
        name: topic,
        partitions: this.buffer.config.partitions,
      });
    }
    const streams = Array.from({ length: meta.partitions }, (_, p) =>
      this.buffer.keys.stream(topic, p),
    );
    const fresh = { ...meta, fetchedAt: Date.now(), streams };
    this.metadata.set(topic, fresh);
    return fresh;
  }
}

/** The `buffer` component of @codefeedr/plugin-redis. */
export const redisBuffer = Object.assign(
  defineBuffer({
    name: 'redis',
    description:
      'Redis Streams buffer: one stream per topic partition, consumer groups with lease-based partition assignment.',
    configSchema: redisBufferConfigSchema,
    capabilities: { transactions: false, replay: true },
    create: (config) => RedisBuffer.connect(config),
  }),
  // No transactions: XACK after the sink has flushed gives at-least-once.
  { guarantees: ['at-least-once'] as const },
);
