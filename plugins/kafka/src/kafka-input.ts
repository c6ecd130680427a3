import {
  Any,
  badSourceRecord,
  defineInput,
  z,
  type BufferConsumer,
  type JsonValue,
  type Serde,
  type Source,
  type StageContext,
  type StreamRecord,
  type TopicPartitionOffset,
} from '@codefeedr/core';
import { kafkaBufferConfigSchema } from './buffer.js';
import { type AnyKafkaBuffer, createKafkaBuffer } from './kafka-buffer.js';
import { kafkaClientConfigSchema, probeKafka } from './client-config.js';
import { valueSerde } from './value-serde.js';

const startSchema = z.union([
  z.enum(['committed', 'earliest', 'latest']),
  z.object({ timestamp: z.number().int().nonnegative() }),
]);

export const kafkaInputConfigSchema = kafkaClientConfigSchema.extend({
  topic: z.string().min(1).describe('An existing topic to read.'),
  group: z.string().min(1).optional().describe('Consumer group; default: the stage id.'),
  start: startSchema
    .default('committed')
    .describe('Where to start in a partition the group has no committed offset for.'),
  serde: z
    .string()
    .min(1)
    .default('json')
    .describe('How message values are decoded: json, msgpack, string, or a registered serde.'),
  keyField: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Dot path of a decoded value field to use as the record key (default: the Kafka key).',
    ),
  isolation: z.enum(['read_committed', 'read_uncommitted']).default('read_committed'),
  sessionTimeoutMs: z.number().int().positive().default(10_000),
  maxBufferedRecords: z.number().int().positive().default(10_000),
  maxBufferedBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1_048_576)
    .describe('Bound of the consumer queue in bytes of values and keys (backpressure).'),
});

export type KafkaInputConfig = z.output<typeof kafkaInputConfigSchema>;

/**
 * Reads an existing Kafka topic (CodeFeedr's KafkaInput). The consumer group's committed
 * offsets are the position: the runtime commits them once everything before is durable
 * downstream, so a restarted stage resumes there (at-least-once). Undecodable messages
 * become bad-source records, which the runtime dead-letters with their bytes (base64).
 */
export class KafkaInputSource implements Source<unknown> {
  private consumer: BufferConsumer | undefined;
  private readonly buffer: AnyKafkaBuffer;
  private readonly serde: Serde;
  private readonly keyPath: string[] | undefined;

  /** @param owner - How errors name this source, e.g. `stage "events" (kafka-input)`. */
  constructor(
    private readonly config: KafkaInputConfig,
    private readonly group: string,
    owner = `the kafka-input of group "${group}"`,
  ) {
    this.buffer = createKafkaBuffer(
      kafkaBufferConfigSchema.parse({
        ...pickClientConfig(config),
        sessionTimeoutMs: config.sessionTimeoutMs,
        isolation: config.isolation,
      }),
      owner,
    );
    this.serde = valueSerde(config.serde);
    this.keyPath = config.keyField?.split('.');
  }

  /** Fails fast (KafkaUnavailableError) when no broker answers, then joins the group. */
  async open(): Promise<void> {
    await probeKafka(this.config, this.buffer.owner);
    this.consumer = await this.buffer.consumer({
      group: this.group,
      topics: [this.config.topic],
      start: this.config.start,
      maxBufferedRecords: this.config.maxBufferedRecords,
      maxBufferedBytes: this.config.maxBufferedBytes,
    });
  }

  async poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<unknown>[]> {
    const messages = await this.consumer!.poll(maxRecords, 200, signal);
    const out = new Array<StreamRecord<unknown>>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      try {
        const value = this.serde.decode(m.value);
        const key = this.keyPath === undefined ? m.key : fieldAsKey(value, this.keyPath);
        out[i] = { key, value, timestamp: m.timestamp, headers: m.headers };
      } catch (error) {
        // The exact bytes, so the dead letter holds the message as it was on the topic.
        out[i] = badSourceRecord(
          new Uint8Array(m.value),
          `${(error as Error).message} (topic ${m.topic}, partition ${m.partition}, offset ${m.offset})`,
          m.timestamp,
          m.headers ?? {},
        );
      }
    }
    return out;
  }

  position(): JsonValue {
    return this.consumer!.positions().map((p) => ({ ...p }));
  }

  /** The group's committed offsets in Kafka are the durable position; nothing to restore here. */
  restore(): void {}

  async commit(position: JsonValue): Promise<void> {
    await this.consumer!.commit(position as unknown as TopicPartitionOffset[]);
  }

  async close(): Promise<void> {
    await this.buffer.close();
  }
}

/** The value at a dot path of `value`, as a string key; undefined when absent. */
export function fieldAsKey(value: unknown, path: readonly string[]): string | undefined {
  let current = value;
  for (const part of path) {
    current =
      current === null || typeof current !== 'object'
        ? undefined
        : (current as Record<string, unknown>)[part];
  }
  return current === undefined || current === null ? undefined : String(current);
}

/** The connection settings out of a stage config (the rest is stage-specific). */
export function pickClientConfig(
  config: z.output<typeof kafkaClientConfigSchema>,
): z.input<typeof kafkaClientConfigSchema> {
  const { brokers, client, clientId, ssl, sasl, connectionTimeoutMs, requestTimeoutMs, logLevel } =
    config;
  return { brokers, client, clientId, ssl, sasl, connectionTimeoutMs, requestTimeoutMs, logLevel };
}

export const kafkaInput = Object.assign(
  defineInput({
    name: 'kafka-input',
    description: 'Reads an existing Kafka topic with a consumer group (at-least-once).',
    configSchema: kafkaInputConfigSchema,
    outputType: Any,
    async createSource(config, ctx: StageContext) {
      const source = new KafkaInputSource(
        config,
        config.group ?? ctx.stageId,
        `stage "${ctx.stageId}" (kafka-input)`,
      );
      await source.open();
      return source;
    },
  }),
  { guarantees: ['at-least-once'] as const },
);
