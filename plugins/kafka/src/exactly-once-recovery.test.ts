// Exactly-once with keyed state on the Kafka buffer, when a transaction fails part-way: the
// worker aborts it and redoes its batches from the committed state and offsets. Every output
// (each running total, each window) must be committed exactly once, against counts made here.
// The windows leave through a named output (their own topic), so its sends are aborted and
// redone with the rest of each transaction.
import { randomBytes } from 'node:crypto';
import {
  defineInput,
  defineMessageType,
  defineOutput,
  defineTransform,
  PipelineBuilder,
  silentLogger,
  z,
  type Buffer as CodefeedrBuffer,
  type BufferProducer,
  type JsonValue,
  type Logger,
  type Source,
  type StreamRecord,
} from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );
const run = randomBytes(4).toString('hex');
const KEYS = 20;
const RECORDS = 4_000;
const STEP_MS = 5; // 4,000 records span 20 s of event time
const WINDOW_MS = 1_000;
const keyOf = (i: number) => `key-${i % KEYS}`;

const Reading = defineMessageType('test.Reading', 1, z.object({ k: z.string(), i: z.number() }));
type Reading = z.output<typeof Reading.schema>;
const Out = defineMessageType(
  'test.Out',
  1,
  z.object({
    kind: z.enum(['total', 'window']),
    k: z.string(),
    c: z.number(),
    start: z.number().optional(),
  }),
);
type Out = z.output<typeof Out.schema>;

class ReadingSource implements Source<Reading> {
  next = 0;
  async poll(max: number): Promise<StreamRecord<Reading>[] | null> {
    if (this.next >= RECORDS) return null;
    const out: StreamRecord<Reading>[] = [];
    for (const end = Math.min(RECORDS, this.next + max); this.next < end; this.next++) {
      const k = keyOf(this.next);
      out.push({ key: k, value: { k, i: this.next }, timestamp: this.next * STEP_MS });
    }
    return out;
  }
  position(): JsonValue {
    return this.next;
  }
  restore(position: JsonValue): void {
    this.next = position as number;
  }
  async close(): Promise<void> {}
}

/**
 * The Kafka buffer, with the given calls of `sendOffsets` (counted over its exactly-once
 * producers) failing as Kafka's coordinator answers while it still completes the commit
 * before (CONCURRENT_TRANSACTIONS, retriable): the transaction is lost, the worker goes on.
 * After the calls in `revokeOn`, the consumer's next assignment() is empty, as when a
 * rebalance begins between the offsets and the commit: the worker must not commit.
 */
function failingTransactions(
  kafka: KafkaBuffer,
  failOn: ReadonlySet<number>,
  revokeOn: ReadonlySet<number>,
) {
  let calls = 0;
  let revokeNext = false;
  const failed: number[] = [];
  const revoked: number[] = [];
  const wrapProducer = (producer: BufferProducer): BufferProducer => ({
    send: (topic, messages) => producer.send(topic, messages),
    close: () => producer.close(),
    beginTransaction: async () => {
      const tx = await producer.beginTransaction!();
      return {
        send: (topic, messages) => tx.send(topic, messages),
        sendOffsets: async (group, positions) => {
          const n = ++calls;
          if (failOn.has(n)) {
            failed.push(n);
            throw Object.assign(
              new Error(
                'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing',
              ),
              { retriable: true, type: 'CONCURRENT_TRANSACTIONS' },
            );
          }
          await tx.sendOffsets(group, positions);
          if (revokeOn.has(n)) {
            revoked.push(n);
            revokeNext = true;
          }
        },
        commit: () => tx.commit(),
        abort: () => tx.abort(),
      };
    },
  });
  const buffer: CodefeedrBuffer = {
    kind: kafka.kind,
    capabilities: kafka.capabilities,
    admin: kafka.admin,
    producer: async (options) => {
      const producer = await kafka.producer(options);
      return options.transactional === true ? wrapProducer(producer) : producer;
    },
    consumer: async (options) => {
      const consumer = await kafka.consumer(options);
      return new Proxy(consumer, {
        get(target, property) {
          if (property === 'assignment')
            return () => (revokeNext ? ((revokeNext = false), []) : target.assignment());
          const member = Reflect.get(target, property, target) as unknown;
          return typeof member === 'function' ? member.bind(target) : member;
        },
      });
    },
    stateStore: () => kafka.stateStore(),
    close: () => kafka.close(),
  };
  return { buffer, failed, revoked };
}

const buffers: KafkaBuffer[] = [];
afterAll(async () => {
  for (const buffer of buffers) await buffer.close().catch(() => undefined);
});

describe('exactly-once with keyed state on Kafka, when transactions fail part-way', () => {
  it('aborts a failed or revoked transaction and redoes it from the committed state: every total and window once', async () => {
    const ids = {
      pipeline: `cftest-eos-recovery-${run}`,
      readings: `cftest-eos-recovery-${run}-readings`,
      counts: `cftest-eos-recovery-${run}-counts`,
      out: `cftest-eos-recovery-${run}-out`,
      windowsOut: `cftest-eos-recovery-${run}-windows-out`,
    };
    const kafka = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', transactionalIdPrefix: run }),
    );
    buffers.push(kafka);
    // Windows fire from the first batches on, so these fail batches that carry fired windows
    // and totals; 7 and 8 fail twice in a row.
    // 11 and 19 commit nothing: a rebalance begins (as far as the worker can tell) first.
    const { buffer, failed, revoked } = failingTransactions(
      kafka,
      new Set([3, 7, 8, 15, 25]),
      new Set([11, 19]),
    );
    const input = defineInput({
      name: 'readings',
      description: 'readings in event-time order',
      configSchema: z.object({}),
      outputType: Reading,
      createSource: () => new ReadingSource(),
    }).create(ids.readings);
    const counts = defineTransform({
      name: 'counts',
      description: 'a running count and 1-second tumbling counts per key',
      configSchema: z.object({}),
      inputTypes: [Reading] as const,
      outputType: Out,
      outputs: { windows: Out },
      transform: ([readings]) => {
        const timed = readings.assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 });
        const totals = timed
          .keyBy((r) => r.k)
          .process<Out>({
            processElement(r, ctx, out) {
              const n = ctx.state<number>('n');
              n.update((n.value() ?? 0) + 1);
              out.collect({ kind: 'total', k: r.k, c: n.value()! });
            },
          });
        const windows = timed
          .keyBy((r) => r.k)
          .window({ type: 'tumbling', sizeMs: WINDOW_MS })
          .process<Out>((k, w, values, out) =>
            out.collect({ kind: 'window', k, c: values.length, start: w.start }),
          );
        return { main: totals, windows };
      },
    }).create(ids.counts);
    const got: Out[] = [];
    const collect = defineOutput({
      name: 'collect',
      description: 'keeps what it reads (read_committed)',
      configSchema: z.object({}),
      inputTypes: [Out] as const,
      createSink: () => ({
        write(batch: readonly StreamRecord<Out>[]) {
          for (const r of batch) got.push(r.value);
        },
        async flush() {},
        async close() {},
      }),
    });
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (message) => void warnings.push(message),
      child: () => logger,
    };
    const p = new PipelineBuilder(ids.pipeline)
      .append(input)
      .append(counts)
      .append(collect.create(ids.out))
      .edge(`${ids.counts}:windows`, collect.create(ids.windowsOut))
      .setBuffer(buffer)
      .setStageOptions(ids.readings, { partitions: 2 })
      .setStageOptions(ids.counts, { guarantee: 'exactly-once' })
      .build();
    const fast = { logger, pollTimeoutMs: 10, tickIntervalMs: 20, batchSize: 100 };
    try {
      const out = p.run({ ...fast, mode: 'worker', stage: ids.out });
      const windowsOut = p.run({ ...fast, mode: 'worker', stage: ids.windowsOut });
      const worker = p.run({
        ...fast,
        mode: 'worker',
        stage: ids.counts,
        stateStore: 'buffer',
        checkpointIntervalMs: 50,
      });
      await p.run({ ...fast, mode: 'worker', stage: ids.readings });
      expect((await worker).status).toBe('finished');
      await out;
      await windowsOut;

      expect(failed).toEqual([3, 7, 8, 15, 25]);
      expect(warnings.filter((w) => w.startsWith('a transaction failed'))).toHaveLength(5);
      expect(revoked).toEqual([11, 19]);
      expect(warnings.filter((w) => w.startsWith('a rebalance began'))).toHaveLength(2);
      // Counted here from the input: each key's totals 1..n once, each window once.
      const totals = new Map<string, number[]>();
      const windows = new Map<string, number[]>();
      for (const o of got) {
        const into = o.kind === 'total' ? totals : windows;
        const id = o.kind === 'total' ? o.k : `${o.k}@${o.start}`;
        if (!into.has(id)) into.set(id, []);
        into.get(id)!.push(o.c);
      }
      const expectedTotals = new Map<string, number[]>();
      const expectedWindows = new Map<string, number[]>();
      for (let i = 0; i < RECORDS; i++) {
        const k = keyOf(i);
        const seen = expectedTotals.get(k) ?? [];
        seen.push(seen.length + 1);
        expectedTotals.set(k, seen);
        const w = `${k}@${Math.floor((i * STEP_MS) / WINDOW_MS) * WINDOW_MS}`;
        expectedWindows.set(w, [(expectedWindows.get(w)?.[0] ?? 0) + 1]);
      }
      for (const list of totals.values()) list.sort((a, b) => a - b);
      expect(totals).toEqual(expectedTotals);
      expect(windows).toEqual(expectedWindows);
    } finally {
      for (const topic of [
        ids.readings,
        ids.counts,
        `${ids.counts}.windows`,
        `${ids.readings}.dlq`,
        `${ids.counts}.dlq`,
        `${ids.out}.dlq`,
        `${ids.windowsOut}.dlq`,
        `${ids.pipeline}.${ids.counts}.state`,
      ])
        await kafka.admin.deleteTopic(topic).catch(() => undefined);
    }
  }, 120_000);
});
