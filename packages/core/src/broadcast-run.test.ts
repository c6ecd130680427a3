import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import { MemoryBuffer } from './memory-buffer.js';
import { defineMessageType } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Source } from './source.js';
import { FileStateStore } from './state-store.js';

/*
 * Broadcast state through a buffer: a rules input (a factor per event type) broadcast to a
 * keyed stage run by two workers, each owning some of the events' partitions, their keyed
 * state sharded in a state store. Every worker must read every rule: an event whose type has
 * no factor where it is processed is reported. The rules input ends before the workers start,
 * so each must have read all of it before its first event, including a third worker that
 * joins after one has left and takes its partitions (and their keyed state) over. The per-key
 * sums are checked against a computation made here from the inputs.
 */

const RULES = 200; // 8 polls of 25: each worker must read them all before its first event
const EVENTS = 6000;
const KEYS = 30;
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

const factorOf = (j: number) => j + 2;
const eventOf = (i: number) => ({ k: `key-${i % KEYS}`, type: `t-${i % RULES}`, n: i % 7 });

/** Records `of(1..count)` in batches, then the end. */
class ListSource<T> implements Source<T> {
  next = 1;
  constructor(
    private readonly count: number,
    private readonly of: (i: number) => StreamRecord<T>,
  ) {}
  async poll(max: number): Promise<StreamRecord<T>[] | null> {
    if (this.next > this.count) return null;
    const out: StreamRecord<T>[] = [];
    for (const end = Math.min(this.count, this.next + max - 1); this.next <= end; this.next++)
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

/** The latest score seen per key (outputs may repeat: at-least-once), and every `missing`. */
class ScoreSink {
  readonly scores = new Map<string, Score>();
  missing = 0;
  write(batch: readonly StreamRecord<Score>[]) {
    for (const { value } of batch) {
      this.missing += value.missing;
      const held = this.scores.get(value.k);
      if (held === undefined || held.count < value.count) this.scores.set(value.k, value);
    }
  }
  async flush() {}
  async close() {}
}

function pipeline(buffer: MemoryBuffer, sink: ScoreSink, onEvent: () => void) {
  const rules = defineInput({
    name: 'rules',
    description: 'a factor per event type',
    configSchema: z.object({}),
    outputType: Rule,
    createSource: () =>
      new ListSource(RULES, (j) => ({
        key: `t-${j - 1}`,
        value: { type: `t-${j - 1}`, factor: factorOf(j - 1) },
        timestamp: j,
      })),
  }).create('rules');
  const events = defineInput({
    name: 'events',
    description: 'events keyed by k',
    configSchema: z.object({}),
    outputType: Event,
    createSource: () =>
      new ListSource(EVENTS, (i) => ({ key: eventOf(i).k, value: eventOf(i), timestamp: i })),
  }).create('events');
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
            onEvent();
            const factor = ctx.broadcastState<number>('factors').get(x.type);
            const held = ctx.state<Score>('score');
            const s = held.value() ?? { k: x.k, count: 0, sum: 0, missing: 0 };
            const next = {
              k: x.k,
              count: s.count + 1,
              sum: s.sum + x.n * (factor ?? 0),
              missing: factor === undefined ? 1 : 0,
            };
            held.update(next);
            out.collect(next);
          },
          processBroadcastElement(rule, ctx) {
            ctx.broadcastState<number>('factors').set(rule.type, rule.factor);
          },
        }),
  }).create('scored');
  const output = defineOutput({
    name: 'scores',
    description: 'keeps scores',
    configSchema: z.object({}),
    inputTypes: [Score] as const,
    createSink: () => sink,
  }).create('out');
  return new PipelineBuilder('broadcast')
    .add(events)
    .add(rules)
    .addParents(scored, ['events', 'rules'])
    .append(output)
    .setBuffer(buffer)
    .setStageOptions('events', { partitions: 4 })
    .setStageOptions('rules', { partitions: 2 })
    .build();
}

/** No event without its rule, and per-key counts and sums as computed here from the inputs. */
function expectEveryRuleApplied(sink: ScoreSink): void {
  const expected = new Map<string, { count: number; sum: number }>();
  for (let i = 1; i <= EVENTS; i++) {
    const e = eventOf(i);
    const s = expected.get(e.k) ?? { count: 0, sum: 0 };
    const j = Number(e.type.slice(2));
    expected.set(e.k, { count: s.count + 1, sum: s.sum + e.n * factorOf(j) });
  }
  expect(sink.missing).toBe(0);
  expect(new Map([...sink.scores].map(([k, s]) => [k, { count: s.count, sum: s.sum }]))).toEqual(
    expected,
  );
}

const fast = { logger: silentLogger, pollTimeoutMs: 10, tickIntervalMs: 20, batchSize: 25 };

describe('broadcast state through a buffer', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('every worker of the stage reads every rule before its first event, also one joining late', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cf-broadcast-'));
    const buffer = new MemoryBuffer({ maxRecordsPerPartition: 400 });
    const sink = new ScoreSink();
    const stopA = new AbortController();
    let processed = 0;
    let c: Promise<unknown> | undefined;
    const store = new FileStateStore(dir);
    const worker = (instance: string, signal?: AbortSignal) =>
      p.run({
        ...fast,
        mode: 'worker',
        stage: 'scored',
        instance,
        checkpointIntervalMs: 5,
        stateStore: store,
        ...(signal === undefined ? {} : { signal }),
      });
    const p = pipeline(buffer, sink, () => {
      processed++;
      // A worker leaves a third of the way; another joins, reading the rules from the start.
      if (processed === 2000) {
        stopA.abort();
        c = worker('c');
      }
    });
    // The rules input runs to its end first.
    expect((await p.run({ ...fast, mode: 'worker', stage: 'rules' })).status).toBe('finished');
    const out = p.run({ ...fast, mode: 'worker', stage: 'out' });
    const a = worker('a', stopA.signal);
    const b = worker('b');
    const deadline = Date.now() + 10_000;
    while (buffer.groupSize('scored') < 2) {
      if (Date.now() > deadline) throw new Error('workers did not join within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    await p.run({ ...fast, mode: 'worker', stage: 'events' });
    expect((await a).status).toBe('stopped');
    expect((await b).status).toBe('finished');
    expect(c).toBeDefined();
    expect(((await c) as { status: string }).status).toBe('finished');
    await out;
    await buffer.close();

    expectEveryRuleApplied(sink);
  });

  it.each(['inline', 'local'] as const)(
    'in %s mode the rules are read ahead of the events too, both inputs starting together',
    async (mode) => {
      const buffer = new MemoryBuffer({ maxRecordsPerPartition: 400 });
      const sink = new ScoreSink();
      const summary = await pipeline(buffer, sink, () => undefined).run({ ...fast, mode });
      await buffer.close();
      expect(summary.status).toBe('finished');
      expectEveryRuleApplied(sink);
    },
  );
});
