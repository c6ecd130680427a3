// Event time across buffer partitions and stage inputs, through real runs (Flink's per-split
// watermarks): every assigned partition counts from its assignment, a quiet input goes idle
// idleTimeoutMs after it was created, and in-order data is never late.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import type { DataStream } from './datastream.js';
import { MemoryBuffer } from './memory-buffer.js';
import { murmur2Partition } from './murmur2.js';
import { Any } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { RunMode } from './pipeline.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import { outputTag } from './stream-graph.js';

interface Event {
  repo: string;
  n: number;
}

interface WindowCount {
  repo: string;
  start: number;
  count: number;
}

type Out = WindowCount | { late: Event };

const MINUTE = 60_000;

/** A bounded list of events, `max` per poll, keyed by repository (so partitioned by it). */
function eventList(events: readonly StreamRecord<Event>[]): Source<Event> {
  let next = 0;
  return {
    poll: async (max) => (next >= events.length ? null : events.slice(next, (next += max))),
    position: () => next,
    restore: (position) => void (next = position as number),
    close: async () => undefined,
  };
}

class Collecting implements Sink<Out> {
  readonly windows: WindowCount[] = [];
  readonly late: Event[] = [];
  constructor(private readonly onWindow: (w: WindowCount) => void = () => undefined) {}
  write(batch: readonly StreamRecord<Out>[]): void {
    for (const { value } of batch) {
      if ('late' in value) this.late.push(value.late);
      else {
        this.windows.push(value);
        this.onWindow(value);
      }
    }
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

const input = (id: string, source: () => Source<Event>) =>
  defineInput({
    name: 'events',
    description: 'events',
    configSchema: z.object({}),
    outputType: Any,
    createSource: source,
  }).create(id);

const output = (sink: Collecting) =>
  defineOutput({
    name: 'collect',
    description: 'collects window counts and late events',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => sink as Sink<unknown>,
  }).create('out');

/** A 1-minute tumbling event-time count per repository; late events to their own output. */
function countPerMinute(streams: DataStream<Event>[], idleTimeoutMs?: number): DataStream<Out> {
  const late = outputTag<Event>('late');
  const timed = streams.map((s) =>
    s.assignTimestampsAndWatermarks({
      maxOutOfOrdernessMs: 0,
      ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
    }),
  );
  const counts = timed[0]!
    .union(...timed.slice(1))
    .keyBy((e) => e.repo)
    .window({ type: 'tumbling', sizeMs: MINUTE })
    .sideOutputLateData(late)
    .process<Out>((repo, window, values, out) =>
      out.collect({ repo, start: window.start, count: values.length }),
    );
  return counts.union(counts.getSideOutput(late).map((e): Out => ({ late: e })));
}

const windowCounts = (inputs: number, idleTimeoutMs?: number) =>
  defineTransform({
    name: 'count-per-minute',
    description: 'events per repository per minute of event time',
    configSchema: z.object({}),
    inputTypes: Array.from({ length: inputs }, () => Any),
    outputType: Any,
    transform: (streams) =>
      countPerMinute(
        streams as unknown as DataStream<Event>[],
        idleTimeoutMs,
      ) as DataStream<unknown>,
  }).create('counts');

/** The expected counts, by plain loops over the input (not the code under test). */
function countByLoops(events: readonly StreamRecord<Event>[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) {
    const id = `${e.value.repo}@${e.timestamp - (e.timestamp % MINUTE)}`;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

const asMap = (windows: readonly WindowCount[]) => {
  const map = new Map<string, number>();
  for (const w of windows) {
    const id = `${w.repo}@${w.start}`;
    expect(map.has(id), `window ${id} fired twice`).toBe(false);
    map.set(id, w.count);
  }
  return map;
};

/** In-order events (non-decreasing timestamps), gaps of 0–2 s, over `repos` repositories. */
const inOrderEvents = fc
  .tuple(
    fc.array(fc.tuple(fc.nat({ max: 2_000 }), fc.nat({ max: 39 })), {
      minLength: 1_500,
      maxLength: 3_000,
    }),
    fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }),
  )
  .map(([steps, start]) => {
    let t = start;
    return steps.map(([gap, repo], n): StreamRecord<Event> => {
      t += gap;
      const value = { repo: `repo-${repo}`, n };
      return { key: value.repo, value, timestamp: t };
    });
  });

const fast = { logger: silentLogger, pollTimeoutMs: 10, tickIntervalMs: 20 };

describe('watermarks across buffer partitions', () => {
  it('4 partitions feeding a 1-minute tumbling count: in-order data is never late, and the windows equal a 1-partition run and an independent count (random batch sizes)', async () => {
    const run = async (events: StreamRecord<Event>[], partitions: number, batchSize: number) => {
      const sink = new Collecting();
      const buffer = new MemoryBuffer();
      const counts = windowCounts(1);
      const summary = await new PipelineBuilder(`partitions-${partitions}`)
        .edge(
          input('events', () => eventList(events)),
          counts,
        )
        .edge(counts, output(sink))
        .setStageOptions('events', { partitions })
        .setBuffer(buffer)
        .build()
        .run({ ...fast, mode: 'local', batchSize });
      expect(summary.status).toBe('finished');
      const counted = summary.metrics.stages.find((s) => s.stage === 'counts')!;
      expect(counted.recordsIn).toBe(events.length);
      // Every partition carried events (40 repositories spread over them by key).
      const reader = await buffer.consumer({
        group: 'check',
        topics: ['events'],
        start: 'earliest',
      });
      const used = new Set<number>();
      for (let batch = await reader.poll(10_000, 0); batch.length > 0;) {
        for (const m of batch) if (m.value.length > 0) used.add(m.partition);
        batch = await reader.poll(10_000, 0);
      }
      await buffer.close();
      expect(used.size).toBe(partitions);
      return sink;
    };
    await fc.assert(
      fc.asyncProperty(
        inOrderEvents,
        fc.constantFrom(50, 137, 500, 1_000),
        async (events, batchSize) => {
          const expected = countByLoops(events);
          const four = await run(events, 4, batchSize);
          expect(four.late).toEqual([]);
          expect(asMap(four.windows)).toEqual(expected);
          const one = await run(events, 1, batchSize);
          expect(one.late).toEqual([]);
          expect(asMap(one.windows)).toEqual(asMap(four.windows));
        },
      ),
      // No shrinking: a counterexample is thousands of events, and each run is a pipeline run.
      { numRuns: 6, endOnFailure: true },
    );
  });
});

describe('idleness from creation', () => {
  /**
   * One event per 10 s of event time, a batch of 30 per poll, each poll 200 ms of processing
   * time on the fake clock; gives up (returns null) after `maxPolls` polls.
   */
  class Busy implements Source<Event> {
    polls = 0;
    readonly emitted: StreamRecord<Event>[] = [];
    constructor(
      private readonly clock: { now: number },
      private readonly maxPolls: number,
      private readonly onExhausted: () => void,
    ) {}
    async poll(): Promise<StreamRecord<Event>[] | null> {
      // A real source waits on I/O: give the run's ticker its turns.
      await new Promise((resolve) => setImmediate(resolve));
      if (this.polls >= this.maxPolls) {
        this.onExhausted();
        return null;
      }
      this.polls++;
      this.clock.now += 200;
      const batch: StreamRecord<Event>[] = [];
      for (let i = 0; i < 30; i++) {
        const n = this.emitted.length;
        const value = { repo: `repo-${n % 3}`, n };
        batch.push({ key: value.repo, value, timestamp: n * 10_000 });
        this.emitted.push(batch[batch.length - 1]!);
      }
      return batch;
    }
    position(): JsonValue {
      return this.polls;
    }
    restore(): void {}
    async close(): Promise<void> {}
  }

  /** Delivers nothing, ever (an unbounded input with no traffic): waits until the run stops. */
  class Silent implements Source<Event> {
    poll(_max: number, signal?: AbortSignal): Promise<StreamRecord<Event>[] | null> {
      return new Promise((resolve) => {
        if (signal?.aborted) return resolve([]);
        signal?.addEventListener('abort', () => resolve([]), { once: true });
      });
    }
    position(): JsonValue {
      return 0;
    }
    restore(): void {}
    async close(): Promise<void> {}
  }

  it.each<RunMode>(['inline', 'local'])(
    '%s: a union of a busy input and one that never delivers fires windows while streaming, once the quiet one is idle (fake clock)',
    async (mode) => {
      const clock = { now: 1_000_000 };
      let exhausted!: () => void;
      const ended = new Promise<'input ended'>((resolve) => {
        exhausted = () => resolve('input ended');
      });
      let fired!: () => void;
      const firstWindow = new Promise<'window fired'>((resolve) => {
        fired = () => resolve('window fired');
      });
      const busy = new Busy(clock, 20_000, exhausted);
      const sink = new Collecting(() => fired());
      const stop = new AbortController();
      const counts = windowCounts(2, 1_000);
      const done = new PipelineBuilder(`idle-${mode}`)
        .edge(
          input('busy', () => busy),
          counts,
        )
        .edge(
          input('quiet', () => new Silent()),
          counts,
        )
        .edge(counts, output(sink))
        .build()
        .run({ ...fast, mode, tickIntervalMs: 1, clock: () => clock.now, signal: stop.signal });

      const first = await Promise.race([firstWindow, ended]);
      const pollsAtFirstWindow = busy.polls;
      stop.abort();
      const summary = await done;
      expect(first).toBe('window fired');
      expect(summary.status).toBe('stopped');
      // 1 s of processing time without a record from "quiet" is 5 polls of "busy": windows
      // fire long before it runs out of input.
      expect(pollsAtFirstWindow).toBeLessThan(20_000);
      expect(sink.late).toEqual([]);
      // Every window that fired is complete and exact.
      const expected = countByLoops(busy.emitted);
      const got = asMap(sink.windows);
      expect(got.size).toBeGreaterThan(0);
      for (const [id, count] of got) expect([id, count]).toEqual([id, expected.get(id)]);
    },
  );
});

describe('watermarks through a rebalance', () => {
  it('a partition kept through a rebalance keeps its event time: windows fire when the others catch up, with no more records of it', async () => {
    // Kafka's consumer reports nothing assigned between the start of a rebalance and the next
    // assignment. The stage used to take that as every partition revoked: when they came back
    // each counted from -inf again, and a partition with no further records held the watermark
    // there for good, so no window fired again.
    const keys = Array.from({ length: 20 }, (_, i) => `repo-${i}`);
    const a = keys.find((k) => murmur2Partition(k, 2) === 0)!;
    const b = keys.find((k) => murmur2Partition(k, 2) === 1)!;
    const event = (repo: string, t: number): StreamRecord<Event> => ({
      key: repo,
      value: { repo, n: t },
      timestamp: t,
    });
    const phases = [
      [event(a, 0), event(b, 0), event(a, 30_000), event(b, 30_000), event(a, 70_000)],
      [event(b, 90_000)], // a: nothing more; b catches up past a's 70 s
    ];
    let phase = 0;
    let released = 0;
    const source: Source<Event> = {
      poll: async () => (released < phase + 1 ? phases[released++]! : []),
      position: () => released,
      restore: () => undefined,
      close: async () => undefined,
    };
    let rebalancing = false;
    let emptyAssignments = 0;
    class RebalancingBuffer extends MemoryBuffer {
      override async consumer(options: Parameters<MemoryBuffer['consumer']>[0]) {
        const inner = await super.consumer(options);
        return new Proxy(inner, {
          get: (target, property) => {
            if (property === 'assignment')
              return () => (rebalancing ? (emptyAssignments++, []) : target.assignment());
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      }
    }
    let counted = 0;
    const counts = defineTransform({
      name: 'count-per-minute',
      description: 'events per repository per minute of event time',
      configSchema: z.object({}),
      inputTypes: [Any],
      outputType: Any,
      transform: ([s]) =>
        countPerMinute([
          (s as DataStream<Event>).map((e) => (counted++, e)),
        ]) as DataStream<unknown>,
    }).create('counts');
    const sink = new Collecting();
    const stop = new AbortController();
    const run = new PipelineBuilder('rebalance-watermarks')
      .edge(
        input('events', () => source),
        counts,
      )
      .edge(counts, output(sink))
      .setStageOptions('events', { partitions: 2 })
      .setBuffer(new RebalancingBuffer())
      .build()
      .run({ ...fast, mode: 'local', batchSize: 10, signal: stop.signal });
    const until = async (what: string, done: () => boolean) => {
      for (const deadline = Date.now() + 5_000; !done();) {
        if (Date.now() > deadline) throw new Error(`not within 5 s: ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await until('the first events counted', () => counted === 5);
      rebalancing = true;
      await until('a few polls mid-rebalance', () => emptyAssignments > 10);
      rebalancing = false;
      phase = 1;
      await until('the first minute of both repositories', () => sink.windows.length === 2);
      expect(new Set(sink.windows.map((w) => `${w.repo}@${w.start}`))).toEqual(
        new Set([`${a}@0`, `${b}@0`]),
      );
      expect(sink.late).toEqual([]);
    } finally {
      stop.abort();
      await run;
    }
  });
});
