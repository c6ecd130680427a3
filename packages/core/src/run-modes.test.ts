// One StageTask in every mode: the same pipelines run inline (in-process edges) and local
// (every edge through the memory buffer) must count the same records in, out, dead-lettered
// and failed, stage by stage. The fields left out depend on the edge by nature: bytes (only a
// buffer edge encodes), batches and latencies (a buffer re-batches), backpressure, consumer
// lag, event-time lag, and the watermark (sampled at batch boundaries that differ by edge).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import type { DataStream } from './datastream.js';
import { defineMessageType } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { RunMode } from './pipeline.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Sink, SinkWriteResult } from './sink.js';
import type { Source } from './source.js';
import { badSourceRecord } from './source-record-error.js';

const Num = defineMessageType('test.Number', 1, z.number());
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** 1..to; every `badEvery`-th value flagged unparseable, every `wrongEvery`-th a string. */
class Numbers implements Source<number> {
  private next = 1;
  constructor(
    private readonly to: number,
    private readonly badEvery = 0,
    private readonly wrongEvery = 0,
  ) {}
  async poll(max: number): Promise<StreamRecord<number>[] | null> {
    if (this.next > this.to) return null;
    const out: StreamRecord<number>[] = [];
    for (; this.next <= this.to && out.length < max; this.next++) {
      const n = this.next;
      if (this.badEvery > 0 && n % this.badEvery === 0)
        out.push(badSourceRecord(`{bad ${n}`, 'not JSON', n) as unknown as StreamRecord<number>);
      else if (this.wrongEvery > 0 && n % this.wrongEvery === 0)
        out.push({ key: `k${n}`, value: `n${n}`, timestamp: n } as unknown as StreamRecord<number>);
      else out.push({ key: `k${n}`, value: n, timestamp: n });
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

/** Refuses values divisible by `rejectEvery` (as a database refuses a row), and fails its first `flaky` writes. */
class Store implements Sink<number> {
  readonly stored: number[] = [];
  private failures = 0;
  constructor(
    private readonly rejectEvery = 0,
    private readonly flaky = 0,
  ) {}
  write(batch: readonly StreamRecord<number>[]): SinkWriteResult<number> | void {
    if (this.failures < this.flaky) {
      this.failures++;
      throw new Error('connection reset');
    }
    const failed = [];
    for (const record of batch) {
      if (this.rejectEvery > 0 && record.value % this.rejectEvery === 0)
        failed.push({ record, error: new Error(`refused ${record.value}`) });
      else this.stored.push(record.value);
    }
    return failed.length > 0 ? { failed } : undefined;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

const input = (id: string, make: () => Source<number>) =>
  defineInput({
    name: 'numbers',
    description: 'numbers',
    configSchema: z.object({}),
    outputType: Num,
    createSource: make,
  }).create(id);
const transform = (id: string, logic: (s: DataStream<number>) => DataStream<number>) =>
  defineTransform({
    name: 'logic',
    description: 'logic',
    configSchema: z.object({}),
    inputTypes: [Num] as const,
    outputType: Num,
    transform: ([s]) => logic(s),
  }).create(id);
const output = (id: string, sink: () => Sink<number>) =>
  defineOutput({
    name: 'store',
    description: 'store',
    configSchema: z.object({}),
    inputTypes: [Num] as const,
    createSink: sink,
  }).create(id);

type Case = (mode: RunMode) => PipelineBuilder;

const cases: Record<string, Case> = {
  'map, filter and a keyed running total': (mode) =>
    new PipelineBuilder(`keyed-${mode}`)
      .append(input('numbers', () => new Numbers(2000)))
      .append(
        transform('totals', (s) =>
          s
            .filter((n) => n % 3 !== 0)
            .map((n) => n * 2)
            .keyBy((n) => String(n % 7))
            .reduce((a, b) => a + b),
        ),
      )
      .append(output('out', () => new Store()))
      .setStageOptions('numbers', { partitions: 3 }),
  'user code that throws, retried then dead-lettered': (mode) =>
    new PipelineBuilder(`throws-${mode}`)
      .append(input('numbers', () => new Numbers(500)))
      .append(
        transform('picky', (s) =>
          s.map((n) => {
            if (n % 10 === 0) throw new Error(`no ${n}`);
            return n;
          }),
        ),
      )
      .append(output('out', () => new Store()))
      .setDeadLetter({ retries: 2 }),
  'bad source records, schema failures and records a sink refuses': (mode) =>
    new PipelineBuilder(`bad-${mode}`)
      .append(input('numbers', () => new Numbers(1000, 40, 25)))
      .append(output('out', () => new Store(7)))
      .setStageOptions('out', { validation: 'all' }),
  'a flaky sink retried': (mode) =>
    new PipelineBuilder(`flaky-${mode}`)
      .append(input('numbers', () => new Numbers(300)))
      .append(output('out', () => new Store(0, 2))),
  'event-time windows over a 3-partition edge, fan-in of two inputs': (mode) => {
    const builder = new PipelineBuilder(`windows-${mode}`);
    const a = input('a', () => new Numbers(1500));
    const b = input('b', () => new Numbers(900));
    const sums = defineTransform({
      name: 'sums',
      description: 'sums per key per 100 ms of event time, over two inputs',
      configSchema: z.object({}),
      inputTypes: [Num, Num] as const,
      outputType: Num,
      transform: ([x, y]) =>
        x
          .union(y)
          .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
          .keyBy((n) => String(n % 5))
          .window({ type: 'tumbling', sizeMs: 100 })
          .reduce((p, q) => p + q),
    }).create('sums');
    return builder
      .edge(a, sums)
      .edge(b, sums)
      .edge(
        sums,
        output('out', () => new Store()),
      )
      .setStageOptions('a', { partitions: 3 });
  },
};

const counted = ['stage', 'kind', 'recordsIn', 'recordsOut', 'deadLettered', 'errors'] as const;

async function run(build: Case, mode: RunMode) {
  const dir = await mkdtemp(join(tmpdir(), 'cf-modes-'));
  dirs.push(dir);
  const summary = await build(mode).setDeadLetter({ dir }).build().run({
    mode,
    logger: silentLogger,
    batchSize: 64,
    pollTimeoutMs: 10,
    tickIntervalMs: 20,
    checkpointIntervalMs: 50,
    ioRetryBackoffMs: 1,
  });
  expect(summary.status).toBe('finished');
  return {
    stages: summary.metrics.stages.map((s) =>
      Object.fromEntries(counted.map((field) => [field, s[field]])),
    ),
    deadLetters: summary.deadLetters.map(({ stage, count }) => ({ stage, count })),
  };
}

describe('run modes: one stage task', () => {
  for (const [name, build] of Object.entries(cases)) {
    it(`${name}: inline and local count the same, stage by stage`, async () => {
      const inline = await run(build, 'inline');
      const local = await run(build, 'local');
      expect(local).toEqual(inline);
      // The case did exercise something: records flowed through every stage.
      for (const stage of inline.stages) expect(stage.recordsIn).toBeGreaterThan(0);
    });
  }

  it('the bad-input case counts what an independent tally says', async () => {
    const { stages } = await run(
      cases['bad source records, schema failures and records a sink refuses']!,
      'local',
    );
    let unparseable = 0;
    let wrongType = 0;
    let refused = 0;
    for (let n = 1; n <= 1000; n++) {
      if (n % 40 === 0) unparseable++;
      else if (n % 25 === 0) wrongType++;
      else if (n % 7 === 0) refused++;
    }
    const [numbers, out] = stages;
    expect(numbers).toMatchObject({
      recordsIn: 1000,
      recordsOut: 1000 - unparseable,
      deadLettered: unparseable,
    });
    expect(out).toMatchObject({
      recordsIn: 1000 - unparseable,
      recordsOut: 1000 - unparseable - wrongType - refused,
      deadLettered: wrongType + refused,
    });
  });
});
