import {
  Any,
  defineOutput,
  z,
  type BufferMessage,
  type BufferProducer,
  type Serde,
  type Sink,
  type SinkRecordFailure,
  type SinkWriteResult,
  type StreamRecord,
} from '@codefeedr/core';
import { KafkaRecordTooLargeError } from './errors.js';
import { errorsIn } from './nested-errors.js';
import { kafkaBufferConfigSchema } from './buffer.js';
import { type AnyKafkaBuffer, createKafkaBuffer } from './kafka-buffer.js';
import { kafkaClientConfigSchema, probeKafka } from './client-config.js';
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
  maxMessageBytes: z
    .number()
    .int()
    .positive()
    .default(1_000_000)
    .describe(
      "Largest encoded value sent; a larger record is a dead letter (keep it under the broker's message.max.bytes, 1 MiB by default).",
    ),
});

export type KafkaOutputConfig = z.output<typeof kafkaOutputConfigSchema>;

/** kafkajs error types Kafka answers for a record itself: resending it can never succeed. */
const REFUSED_RECORD_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
]);

/** kafkajs names the broker's error in `type`, @platformatic/kafka in `apiId` (inside an AggregateError). */
function refusesRecord(error: unknown): boolean {
  return errorsIn(error).some((e) =>
    [e.type, e.apiId].some((name) => typeof name === 'string' && REFUSED_RECORD_TYPES.has(name)),
  );
}

/** One `write` batch: its records, their encoded messages, and its send while unconfirmed. */
interface PendingSend {
  readonly records: StreamRecord<unknown>[];
  readonly messages: BufferMessage[];
  sent: Promise<void> | undefined;
}

/**
 * Writes records to a Kafka topic (CodeFeedr's KafkaOutput). `write` starts the send at once
 * (so batches pipeline); `flush` resolves when every send so far is acknowledged by all
 * in-sync replicas, which is when the runtime commits its input positions (at-least-once).
 * A batch stays pending until Kafka confirms it, so a failed flush retried by the runtime
 * sends it again (nothing is lost). Records Kafka refuses for what they are (over
 * `maxMessageBytes`, invalid) are reported in `failed` and dead-lettered; the rest are written.
 */
export class KafkaOutputSink implements Sink<unknown> {
  private readonly buffer: AnyKafkaBuffer;
  private readonly serde: Serde;
  private producer: BufferProducer | undefined;
  private pending: PendingSend[] = [];
  private readonly keyPath: string[] | undefined;

  /** @param owner - How errors name this sink, e.g. `stage "out" (kafka-output)`. */
  constructor(
    private readonly config: KafkaOutputConfig,
    owner = `the kafka-output of topic "${config.topic}"`,
  ) {
    this.buffer = createKafkaBuffer(
      kafkaBufferConfigSchema.parse({
        ...pickClientConfig(config),
        compression: config.compression,
      }),
      owner,
    );
    this.serde = valueSerde(config.serde);
    this.keyPath = config.keyField?.split('.');
  }

  /** Fails fast (KafkaUnavailableError) when no broker answers, then ensures the topic. */
  async open(): Promise<void> {
    await probeKafka(this.config, this.buffer.owner);
    await this.buffer.admin.ensureTopic({
      name: this.config.topic,
      partitions: this.config.partitions,
      replicationFactor: this.config.replicationFactor,
    });
    this.producer = await this.buffer.producer({ clientId: `output-${this.config.topic}` });
  }

  write(batch: readonly StreamRecord<unknown>[]): SinkWriteResult<unknown> | void {
    if (batch.length === 0) return;
    const records: StreamRecord<unknown>[] = [];
    const messages: BufferMessage[] = [];
    const failed: SinkRecordFailure<unknown>[] = [];
    for (const record of batch) {
      let value: Uint8Array;
      try {
        value = this.serde.encode(record.value);
      } catch (error) {
        failed.push({ record, error });
        continue;
      }
      if (value.length > this.config.maxMessageBytes) {
        failed.push({
          record,
          error: new KafkaRecordTooLargeError(
            this.config.topic,
            value.length,
            this.config.maxMessageBytes,
          ),
        });
        continue;
      }
      records.push(record);
      messages.push({
        key: this.keyOf(record),
        value,
        timestamp: record.timestamp,
        headers: record.headers,
      });
    }
    if (messages.length > 0) {
      const entry: PendingSend = { records, messages, sent: undefined };
      entry.sent = this.send(entry);
      this.pending.push(entry);
    }
    return failed.length > 0 ? { failed } : undefined;
  }

  async flush(): Promise<SinkWriteResult<unknown> | void> {
    const failed: SinkRecordFailure<unknown>[] = [];
    while (this.pending.length > 0) {
      const entry = this.pending[0]!;
      entry.sent ??= this.send(entry); // a send that failed before: again
      try {
        await entry.sent;
      } catch (error) {
        entry.sent = undefined;
        if (!refusesRecord(error)) throw error; // kept pending: the runtime's retry resends it
        // Kafka refused something in the batch: find which records, send the others one by one.
        for (let i = 0; i < entry.messages.length; i++) {
          try {
            await this.producer!.send(this.config.topic, [entry.messages[i]!]);
          } catch (single) {
            if (!refusesRecord(single)) throw single;
            failed.push({ record: entry.records[i]!, error: single });
          }
        }
      }
      this.pending.shift();
    }
    return failed.length > 0 ? { failed } : undefined;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pending.map((p) => p.sent));
    await this.buffer.close();
  }

  private send(entry: PendingSend): Promise<void> {
    const sent = this.producer!.send(this.config.topic, entry.messages);
    sent.catch(() => undefined); // awaited by flush; never an unhandled rejection meanwhile
    return sent;
  }

  private keyOf(record: StreamRecord<unknown>): string | undefined {
    return this.keyPath === undefined ? record.key : fieldAsKey(record.value, this.keyPath);
  }
}

export const kafkaOutput = defineOutput({
  name: 'kafka-output',
  description: 'Writes records to a Kafka topic, keyed by the record key or a value field.',
  configSchema: kafkaOutputConfigSchema,
  inputTypes: [Any] as const,
  guarantees: ['at-least-once'],
  async createSink(config, ctx) {
    const sink = new KafkaOutputSink(config, `stage "${ctx.stageId}" (kafka-output)`);
    await sink.open();
    return sink;
  },
});
