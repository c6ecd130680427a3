// The pipeline split-run.test.ts runs in splits. Its worker threads import this file with plain
// Node, so it imports core by its package name (the build), not by relative source paths.
import {
  PipelineBuilder,
  defineInput,
  defineMessageType,
  defineOutput,
  defineTransform,
  ndjsonFileOutput,
  z,
  type JsonValue,
  type Pipeline,
  type Source,
  type StreamRecord,
} from '@codefeedr/core';

export const NumberType = defineMessageType('test.SplitNumber', 1, z.number().int());
export const WindowCountType = defineMessageType(
  'test.SplitWindowCount',
  1,
  z.object({ start: z.number(), count: z.number(), sum: z.number() }),
);

export interface SplitFixtureConfig {
  /** Numbers 1..to, number n at event time n seconds; split i of k reads those with n % k = i. */
  to: number;
  /** Split 1's source waits this long before each poll, 20 times as long before its first (a slow split). */
  slowSplitDelayMs: number;
  /** Numbers divisible by this throw in the parallel transform (dead letters); 0: none. */
  failEvery: number;
  /** The parallel NDJSON output of every number. */
  output: string;
  /** A split whose source fails at once (-1: none). */
  failingSplit: number;
  /** A split whose source has nothing and ends at once (-1: none). */
  emptySplit: number;
  /** The parallel transform turns 5 into a function, which cannot cross threads. */
  uncloneable?: boolean;
}

// Fields without parameter properties: Node runs this file by stripping types only.
class NumbersSource implements Source<number> {
  private next: number;
  private readonly to: number;
  private readonly split: { index: number; count: number };
  private readonly delayMs: number;
  private readonly fail: boolean;
  private readonly empty: boolean;
  constructor(
    to: number,
    split: { index: number; count: number },
    delayMs: number,
    fail: boolean,
    empty: boolean,
  ) {
    this.empty = empty;
    this.to = to;
    this.split = split;
    this.delayMs = delayMs;
    this.fail = fail;
    this.next = split.index === 0 ? split.count : split.index;
  }
  async poll(max: number): Promise<StreamRecord<number>[] | null> {
    if (this.fail) throw new Error(`split ${this.split.index} cannot read its numbers`);
    if (this.empty) return null;
    // Its first batch comes well after the other split has sent all of its numbers.
    const delay = this.next === this.split.index ? this.delayMs * 20 : this.delayMs;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (this.next > this.to) return null;
    const batch: StreamRecord<number>[] = [];
    while (batch.length < Math.min(max, 50) && this.next <= this.to) {
      batch.push({ value: this.next, timestamp: this.next * 1000 });
      this.next += this.split.count;
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

const numbers = defineInput({
  name: 'split-numbers',
  description: 'Numbers 1..to; a split reads those with n % count = index (its share).',
  configSchema: z.object({
    to: z.number().int(),
    slowSplitDelayMs: z.number(),
    failingSplit: z.number().int(),
    emptySplit: z.number().int(),
  }),
  outputType: NumberType,
  splittable: true,
  createSource: (config, ctx) => {
    const split = ctx.split ?? { index: 0, count: 1 };
    return new NumbersSource(
      config.to,
      split,
      split.index === 1 ? config.slowSplitDelayMs : 0,
      split.index === config.failingSplit,
      split.index === config.emptySplit,
    );
  },
});

const checked = defineTransform({
  name: 'checked',
  description: 'Passes numbers on; throws on multiples of failEvery (they become dead letters).',
  configSchema: z.object({ failEvery: z.number().int(), uncloneable: z.boolean() }),
  inputTypes: [NumberType] as const,
  outputType: NumberType,
  transform: ([input], config) =>
    input.map((n) => {
      if (config.failEvery > 0 && n % config.failEvery === 0) throw new Error(`${n} refused`);
      if (config.uncloneable && n === 5) return (() => n) as unknown as number;
      return n;
    }),
});

/** Runs in the main thread: a tumbling 10 s event-time window over every split's numbers. */
const windows = defineTransform({
  name: 'windows',
  description: 'Count and sum per tumbling 10-second event-time window; late numbers named.',
  configSchema: z.object({}),
  inputTypes: [NumberType] as const,
  outputType: WindowCountType,
  transform: ([input]) => {
    const late = { id: 'late' };
    const counts = input
      .assignTimestampsAndWatermarks({
        timestampAssigner: (n) => n * 1000,
        maxOutOfOrdernessMs: 0,
      })
      .windowAll({ type: 'tumbling', sizeMs: 10_000 })
      .sideOutputLateData(late)
      .aggregate<
        { start: number; count: number; sum: number },
        { start: number; count: number; sum: number }
      >({
        createAccumulator: () => ({ start: -1, count: 0, sum: 0 }),
        add: (n, acc) => ({
          start: Math.floor((n * 1000) / 10_000) * 10_000,
          count: acc.count + 1,
          sum: acc.sum + n,
        }),
        getResult: (acc) => acc,
      });
    // A late number is a window of its own with start -1: the test expects none.
    const lateOnes = counts
      .getSideOutput<number>(late)
      .map((n) => ({ start: -1, count: 1, sum: n }));
    return counts.union(lateOnes);
  },
});

/** Filled by the main thread's output (the test reads it after the run). */
export const collected: { start: number; count: number; sum: number }[] = [];
/** The output's writes that held windows: one means they all fired at the end. */
export const writes = { count: 0 };
/** Called by the output after each write (the test stops a run from it). */
export const hooks = { written: (): void => {} };

const collect = defineOutput({
  name: 'collect',
  description: 'Keeps window counts in `collected`.',
  configSchema: z.object({}),
  inputTypes: [WindowCountType] as const,
  createSink: () => ({
    write: (batch) => {
      if (batch.length > 0) writes.count++;
      for (const r of batch) collected.push(r.value);
      hooks.written();
    },
    flush: async () => {},
    close: async () => {},
  }),
});

export function splitFixturePipeline(config: SplitFixtureConfig): Pipeline {
  const source = numbers.create('numbers', {
    to: config.to,
    slowSplitDelayMs: config.slowSplitDelayMs,
    failingSplit: config.failingSplit,
    emptySplit: config.emptySplit,
  });
  const check = checked.create('checked', {
    failEvery: config.failEvery,
    uncloneable: config.uncloneable === true,
  });
  const ndjson = ndjsonFileOutput.create('ndjson', { path: config.output, mode: 'truncate' });
  const window = windows.create('windows', {});
  const out = collect.create('collect', {});
  return new PipelineBuilder('split-fixture')
    .setFactory({
      module: import.meta.url,
      export: 'splitFixturePipeline',
      config: config as unknown as JsonValue,
    })
    .append(source)
    .append(check)
    .append(window)
    .append(out)
    .edge(check, ndjson)
    .setStageOptions('numbers', { parallel: true })
    .setStageOptions('checked', { parallel: true })
    .setStageOptions('ndjson', { parallel: true })
    .build();
}
