import {
  Any,
  defineOutput,
  z,
  type BufferMessage,
  type BufferProducer,
  type Serde,
  type Sink,
  type StreamRecord,
} from '@codefeedr/core';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import { kafkaClientConfigSchema } from './client-config.js';
import { fieldAsKey, pickClientConfig } from './kafka-input.js';
import { valueSerde } from './value-serde.js';

export const kafkaOutputConfigSchema = kafkaClientConfigSchema.extend({
  topic: z.string().min(1).describe('Topic to write (created with `partitions` if missing).'),
  partitions: z.number().int().positive().default(1),
  replicationFactor: z.number().int().min(-1).default(-1),
  serde: z
    .string()
    .min(1)
    .default('json')
    .describe('How values are encoded: json, msgpack, string, or a registered serde.'),
  keyField: z
    .string()
    .min(1)
    .optional()
    .describe('Dot path of a value field to use as the Kafka key (default: the record key).'),
  compression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'),
});

export type KafkaOutputConfig = z.output<typeof kafkaOutputConfigSchema>;

/**
 * Writes records to a Kafka topic (CodeFeedr's KafkaOutput). `write` starts the send at once
 * (so batches pipeline); `flush` resolves when every send so far is acknowledged by all
 * in-sync replicas, which is when the runtime commits its input positions (at-least-once).
 */
export class KafkaOutputSink implements Sink<unknown> {
  private readonly buffer: KafkaBuffer;
  private readonly serde: Serde;
  private producer: BufferProducer | undefined;
  private pending: Promise<void>[] = [];
  private readonly keyPath: string[] | undefined;

  constructor(private readonly config: KafkaOutputConfig) {
    this.buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({
        ...pickClientConfig(config),
        compression: config.compression,
      }),
    );
    this.serde = valueSerde(config.serde);
    this.keyPath = config.keyField?.split('.');
  }

  async open(): Promise<void> {
    await this.buffer.admin.ensureTopic({
      name: this.config.topic,
      partitions: this.config.partitions,
      replicationFactor: this.config.replicationFactor,
    });
    this.producer = await this.buffer.producer({ clientId: `output-${this.config.topic}` });
  }

  write(batch: readonly StreamRecord<unknown>[]): void {
    if (batch.length === 0) return;
    const messages = new Array<BufferMessage>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      messages[i] = {
        key: this.keyOf(record),
        value: this.serde.encode(record.value),
        timestamp: record.timestamp,
        headers: record.headers,
      };
    }
    this.pending.push(this.producer!.send(this.config.topic, messages));
  }

  async flush(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pending);
    await this.buffer.close();
  }

  private keyOf(record: StreamRecord<unknown>): string | undefined {
    return this.keyPath === undefined ? record.key : fieldAsKey(record.value, this.keyPath);
  }
}

export const kafkaOutput = Object.assign(
  defineOutput({
    name: 'kafka-output',
    description: 'Writes records to a Kafka topic, keyed by the record key or a value field.',
    configSchema: kafkaOutputConfigSchema,
    inputTypes: [Any] as const,
    async createSink(config) {
      const sink = new KafkaOutputSink(config);
      await sink.open();
      return sink;
    },
  }),
  { guarantees: ['at-least-once'] as const },
);
