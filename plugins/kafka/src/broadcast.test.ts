// Broadcast state on the Kafka buffer: a rules topic (a factor per event type) broadcast to two
// workers of a keyed stage, exactly-once with its keyed state in the Kafka state store. Each
// worker reads the rules whole with a consumer group of its own, ahead of the events, and the
// keyed state follows its partitions; a third worker joins mid-run and must read every rule
// before its first event. Every event must find its rule, and every per-key score must be
// committed once, equal to a count made here from the inputs.
import { randomBytes } from 'node:crypto';
import {
  defineInput,
  defineMessageType,
  defineOutput,
  defineTransform,
  PipelineBuilder,
  silentLogger,
  z,
  type JsonValue,
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
const RULES = 300; // three polls of 100: read ahead, not by luck
const EVENTS = 3_000;
const KEYS = 24;
const factorOf = (j: number) => j + 2;
const eventOf = (i: number) => ({ k: `key-${i % KEYS}`, type: `t-${i % RULES}`, n: i % 7 });

const Rule = defineMessageType('test.Rule', 1, z.object({ type: z.string(), factor: z.number() }));
const Event = defineMessageType(
  'test.Event',
  1,
  z.object({ k: z.string(), type: z.string(), n: z.number() }),
);
const Score = defineMessageType(
  'test.Score',
  1,
  z.object({ k: z.string(), count: z.number(), sum: z.number(), missing: z.number() }),
);
type Score = z.output<typeof Score.schema>;

/** `of(0..count-1)` in batches, then the end. */
class ListSource<T> implements Source<T> {
  next = 0;
  constructor(
    private readonly count: number,
    private readonly of: (i: number) => StreamRecord<T>,
  ) {}
  async poll(max: number): Promise<StreamRecord<T>[] | null> {
    if (this.next >= this.count) return null;
    const out: StreamRecord<T>[] = [];
    for (const end = Math.min(this.count, this.next + max); this.next < end; this.next++)
      out.push(this.of(this.next));
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

const buffers: KafkaBuffer[] = [];
afterAll(async () => {
  for (const buffer of buffers) await buffer.close().catch(() => undefined);
});

describe('broadcast state on Kafka', () => {
  it('every worker reads every rule ahead of its events, a late joiner too; exactly-once scores', async () => {
    const ids = {
      pipeline: `cftest-broadcast-${run}`,
      rules: `cftest-broadcast-${run}-rules`,
      events: `cftest-broadcast-${run}-events`,
      scored: `cftest-broadcast-${run}-scored`,
      out: `cftest-broadcast-${run}-out`,
    };
    // One buffer (clients and state store) per worker, as separate processes would have.
    const newBuffer = () => {
      const buffer = new KafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', transactionalIdPrefix: run }),
      );
      buffers.push(buffer);
      return buffer;
    };
    const kafka = newBuffer();
    const got: Score[] = [];
    let processed = 0;
    let late: Promise<unknown> | undefined;
    const rules = defineInput({
      name: 'rules',
      description: 'a factor per event type',
      configSchema: z.object({}),
      outputType: Rule,
      createSource: () =>
        new ListSource(RULES, (j) => ({
          key: `t-${j}`,
          value: { type: `t-${j}`, factor: factorOf(j) },
          timestamp: j,
        })),
    }).create(ids.rules);
    const events = defineInput({
      name: 'events',
      description: 'events keyed by k',
      configSchema: z.object({}),
      outputType: Event,
      createSource: () =>
        new ListSource(EVENTS, (i) => ({ key: eventOf(i).k, value: eventOf(i), timestamp: i })),
    }).create(ids.events);
    const scored = defineTransform({
      name: 'scored',
      description: 'per key, the sum of n times its type’s factor',
      configSchema: z.object({}),
      inputTypes: [Event, Rule] as const,
      outputType: Score,
      transform: ([e, r]) =>
        e
          .keyBy((x) => x.k)
          .connect(r.broadcast())
          .process<Score>({
            processElement(x, ctx, out) {
              if (++processed === EVENTS / 3) late = worker('w3');
              const factor = ctx.broadcastState<number>('factors').get(x.type);
              const held = ctx.state<Score>('score');
              const s = held.value() ?? { k: x.k, count: 0, sum: 0, missing: 0 };
              const next = {
                k: x.k,
                count: s.count + 1,
                sum: s.sum + x.n * (factor ?? 0),
                missing: s.missing + (factor === undefined ? 1 : 0),
              };
              held.update(next);
              out.collect(next);
            },
            processBroadcastElement(rule, ctx) {
              ctx.broadcastState<number>('factors').set(rule.type, rule.factor);
            },
          }),
    }).create(ids.scored);
    const collect = defineOutput({
      name: 'collect',
      description: 'keeps every score',
      configSchema: z.object({}),
      inputTypes: [Score] as const,
      createSink: () => ({
        write(batch: readonly StreamRecord<Score>[]) {
          for (const r of batch) got.push(r.value);
        },
        async flush() {},
        async close() {},
      }),
    }).create(ids.out);
    const build = (buffer: KafkaBuffer) =>
      new PipelineBuilder(ids.pipeline)
        .add(events)
        .add(rules)
        .addParents(scored, [events, rules])
        .append(collect)
        .setBuffer(buffer)
        .setStageOptions(ids.events, { partitions: 3 })
        .setStageOptions(ids.rules, { partitions: 2 })
        .setStageOptions(ids.scored, { guarantee: 'exactly-once' })
        .build();
    const p = build(kafka);
    const fast = { logger: silentLogger, pollTimeoutMs: 10, tickIntervalMs: 20, batchSize: 100 };
    const worker = (instance: string) =>
      build(newBuffer()).run({
        ...fast,
        mode: 'worker',
        stage: ids.scored,
        instance,
        stateStore: 'buffer',
        checkpointIntervalMs: 50,
      });
    try {
      // The rules input ends first; the events come while the workers run.
      expect((await p.run({ ...fast, mode: 'worker', stage: ids.rules })).status).toBe('finished');
      const out = p.run({ ...fast, mode: 'worker', stage: ids.out });
      const w1 = worker('w1');
      const w2 = worker('w2');
      await p.run({ ...fast, mode: 'worker', stage: ids.events });
      for (const w of [w1, w2]) expect((await w).status).toBe('finished');
      expect(late).toBeDefined();
      expect(((await late) as { status: string }).status).toBe('finished');
      await out;

      // Counted here from the inputs: each key's scores 1..n once, the last one exact.
      const expected = new Map<string, { count: number; sum: number }>();
      for (let i = 0; i < EVENTS; i++) {
        const e = eventOf(i);
        const s = expected.get(e.k) ?? { count: 0, sum: 0 };
        expected.set(e.k, { count: s.count + 1, sum: s.sum + e.n * factorOf(i % RULES) });
      }
      expect(got.filter((s) => s.missing > 0)).toEqual([]);
      const counts = new Map<string, number[]>();
      for (const s of got) counts.set(s.k, [...(counts.get(s.k) ?? []), s.count]);
      for (const [k, { count }] of expected)
        expect([k, (counts.get(k) ?? []).sort((a, b) => a - b)]).toEqual([
          k,
          Array.from({ length: count }, (_, i) => i + 1),
        ]);
      const finals = new Map<string, number>();
      for (const s of got) if (s.count === expected.get(s.k)!.count) finals.set(s.k, s.sum);
      expect(finals).toEqual(new Map([...expected].map(([k, v]) => [k, v.sum])));
    } finally {
      for (const topic of [
        ids.rules,
        ids.events,
        ids.scored,
        `${ids.scored}.dlq`,
        `${ids.out}.dlq`,
        `${ids.pipeline}.${ids.scored}.state`,
      ])
        await kafka.admin.deleteTopic(topic).catch(() => undefined);
    }
  }, 180_000);
});
