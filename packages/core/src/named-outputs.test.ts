// Named outputs: a transform's side outputs (late data, a split) as edges of the pipeline, each
// read by its own stage, in every run mode. Expected results come from plain loops over the
// input, not from the engine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import { defineMessageType } from './message-type.js';
import { NamedOutputError } from './named-outputs.js';
import { PipelineBuilder } from './pipeline-builder.js';
import { PipelineValidationError } from './pipeline-errors.js';
import type { RunMode } from './pipeline.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import { outputTag } from './stream-graph.js';

const Num = defineMessageType('test.Number', 1, z.number());
const Label = defineMessageType('test.Label', 1, z.string());
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const N = 3000;
/** 1..N at event time n, with stragglers (value 100000 + i, event time 10 + i) after every 500th. */
function inputRecords(): StreamRecord<number>[] {
  const out: StreamRecord<number>[] = [];
  for (let n = 1; n <= N; n++) {
    out.push({ value: n, timestamp: n });
    if (n % 500 === 0) out.push({ value: 100000 + n, timestamp: 10 + n / 500 });
  }
  return out;
}

/** Polls one record at a time around a straggler, so it always arrives after the watermark passed it. */
class Listed implements Source<number> {
  private next = 0;
  constructor(private readonly records: readonly StreamRecord<number>[]) {}
  async poll(max: number): Promise<StreamRecord<number>[] | null> {
    if (this.next >= this.records.length) return null;
    const batch: StreamRecord<number>[] = [];
    while (batch.length < max && this.next < this.records.length) {
      const record = this.records[this.next]!;
      if (batch.length > 0 && record.value > 100000) break;
      batch.push(record);
      this.next++;
      if (record.value > 100000) break;
    }
    return batch;
  }
  position(): JsonValue {
    return this.next;
  }
  restore(position: JsonValue): void {
    this.next = position as number;
  }
  async close(): Promise<void> {}
}

class Collect<T> implements Sink<T> {
  readonly values: T[] = [];
  write(batch: readonly StreamRecord<T>[]): void {
    for (const r of batch) this.values.push(r.value);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

const late = outputTag<number>('late-data');
const splitter = defineTransform({
  name: 'splitter',
  description: 'even numbers summed per 100 ms window; late ones and odd ones to their own outputs',
  configSchema: z.object({}),
  inputTypes: [Num] as const,
  outputType: Num,
  outputs: { late: Num, odd: Num },
  transform: ([numbers]) => {
    const even = numbers
      .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
      .filter((n) => n % 2 === 0);
    const sums = even
      .keyBy(() => 'all')
      .window({ type: 'tumbling', sizeMs: 100 })
      .sideOutputLateData(late)
      .reduce((a, b) => a + b);
    return { main: sums, late: sums.getSideOutput(late), odd: numbers.filter((n) => n % 2 === 1) };
  },
});
const labels = defineTransform({
  name: 'labels',
  description: 'labels each late number',
  configSchema: z.object({}),
  inputTypes: [Num] as const,
  outputType: Label,
  transform: ([numbers]) => numbers.map((n) => `late ${n}`),
});
const collect = <T>(id: string, sink: Collect<T>, type: typeof Num | typeof Label) =>
  defineOutput({
    name: 'collect',
    description: 'collects values',
    configSchema: z.object({}),
    inputTypes: [type] as const,
    createSink: () => sink as Sink<never>,
  }).create(id);
const numbers = () =>
  defineInput({
    name: 'numbers',
    description: 'numbers',
    configSchema: z.object({}),
    outputType: Num,
    createSource: () => new Listed(inputRecords()),
  }).create('numbers');

async function runSplit(mode: RunMode) {
  const sums = new Collect<number>();
  const odd = new Collect<number>();
  const lateLabels = new Collect<string>();
  const split = splitter.create('split');
  const dir = await mkdtemp(join(tmpdir(), 'cf-named-'));
  dirs.push(dir);
  const summary = await new PipelineBuilder(`named-${mode}`)
    .append(numbers())
    .append(split)
    .append(collect('sums', sums, Num))
    .edge({ stage: split, output: 'odd' }, collect('odd', odd, Num))
    .edge('split:late', labels.create('labels'))
    .edge('labels', collect('late', lateLabels, Label))
    .setDeadLetter({ dir })
    .build()
    .run({ mode, logger: silentLogger, batchSize: 64, pollTimeoutMs: 10, tickIntervalMs: 20 });
  expect(summary.status).toBe('finished');
  return { sums: sums.values, odd: odd.values, late: lateLabels.values };
}

describe('named outputs', () => {
  // Independent of the engine: window sums of the even in-order numbers, the odd ones, and
  // the stragglers (every one is behind a watermark that passed its window's end).
  const records = inputRecords();
  const expectedSums = new Map<number, number>();
  for (const { value, timestamp } of records)
    if (value < 100000 && value % 2 === 0) {
      const start = Math.floor(timestamp / 100) * 100;
      expectedSums.set(start, (expectedSums.get(start) ?? 0) + value);
    }
  const expectedOdd = records.filter((r) => r.value % 2 === 1).map((r) => r.value);
  const expectedLate = records.filter((r) => r.value > 100000).map((r) => `late ${r.value}`);

  for (const mode of ['inline', 'local'] as const)
    it(`${mode}: each output reaches the stages that read it, and the run ends`, async () => {
      const got = await runSplit(mode);
      expect(got.sums.sort((a, b) => a - b)).toEqual(
        [...expectedSums.values()].sort((a, b) => a - b),
      );
      expect(got.odd.sort((a, b) => a - b)).toEqual(expectedOdd);
      expect(got.late.sort()).toEqual([...expectedLate].sort());
    });

  it('describe() lists the outputs and the edges that read them', () => {
    const split = splitter.create('split');
    const description = new PipelineBuilder('d')
      .append(numbers())
      .append(split)
      .append(collect('sums', new Collect(), Num))
      .edge('split:odd', collect('odd', new Collect(), Num))
      .edge('split:late', collect('late', new Collect(), Num))
      .build()
      .describe();
    expect(description.stages.find((s) => s.id === 'split')?.outputs).toEqual({
      late: 'test.Number@1',
      odd: 'test.Number@1',
    });
    expect(description.edges.filter((e) => e.from === 'split')).toEqual([
      { from: 'split', to: 'sums', inputIndex: 0 },
      { from: 'split', output: 'odd', to: 'odd', inputIndex: 0 },
      { from: 'split', output: 'late', to: 'late', inputIndex: 0 },
    ]);
  });

  it('refuses an unknown output, a type mismatch and a clashing topic, all at once', () => {
    const split = splitter.create('split');
    const build = () =>
      new PipelineBuilder('bad')
        .append(numbers())
        .append(split)
        .append(collect('sums', new Collect(), Num))
        .edge('split:lates', collect('a', new Collect(), Num))
        .edge('split:odd', collect('b', new Collect(), Label))
        .edge('split', collect('split.late', new Collect(), Num))
        .build();
    expect(build).toThrow(PipelineValidationError);
    try {
      build();
    } catch (error) {
      const problems = (error as PipelineValidationError).problems;
      expect(problems.map((p) => p.code).sort()).toEqual([
        'OUTPUT_TOPIC_CLASH',
        'TYPE_MISMATCH',
        'UNKNOWN_OUTPUT',
      ]);
      expect(problems.find((p) => p.code === 'UNKNOWN_OUTPUT')!.message).toContain(
        'declares "late", "odd"',
      );
      expect(problems.find((p) => p.code === 'TYPE_MISMATCH')!.message).toContain('"split:odd"');
    }
  });

  it('refuses a reserved or unusable output name where the component is defined', () => {
    const define = (name: string) => () =>
      defineTransform({
        name: 'x',
        description: 'x',
        configSchema: z.object({}),
        inputTypes: [Num] as const,
        outputType: Num,
        outputs: { [name]: Num },
        transform: ([s]) => s,
      });
    expect(define('main')).toThrow(NamedOutputError);
    expect(define('a.b')).toThrow(/letters, digits/);
    expect(define('late_data-2')).not.toThrow();
  });

  it('fails the run at start with NAMED_OUTPUT_INVALID when transform() returns other outputs than declared', async () => {
    const wrong = defineTransform({
      name: 'wrong',
      description: 'returns an undeclared output',
      configSchema: z.object({}),
      inputTypes: [Num] as const,
      outputType: Num,
      outputs: { odd: Num },
      transform: ([s]) => ({ main: s, even: s.filter((n) => n % 2 === 0) }),
    }).create('wrong');
    const run = new PipelineBuilder('wrong')
      .append(numbers())
      .append(wrong)
      .append(collect('out', new Collect(), Num))
      .build()
      .run({ logger: silentLogger });
    await expect(run).rejects.toMatchObject({
      code: 'NAMED_OUTPUT_INVALID',
      message: expect.stringMatching(/undeclared outputs even; .*no stream for the declared odd/),
    });
  });

  it('refuses several outputs from a stage that declares none', async () => {
    const undeclared = defineTransform({
      name: 'undeclared',
      description: 'returns outputs it does not declare',
      configSchema: z.object({}),
      inputTypes: [Num] as const,
      outputType: Num,
      transform: ([s]) => ({ main: s, odd: s.filter((n) => n % 2 === 1) }),
    }).create('undeclared');
    const run = new PipelineBuilder('undeclared')
      .append(numbers())
      .append(undeclared)
      .append(collect('out', new Collect(), Num))
      .build()
      .run({ logger: silentLogger });
    await expect(run).rejects.toMatchObject({
      code: 'NAMED_OUTPUT_INVALID',
      message: expect.stringContaining('declares no named outputs'),
    });
  });
});
