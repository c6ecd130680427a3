// The two-input operators against naive references, driven through the testkit's transform
// harness with random elements, batch splits and watermark interleavings:
// - connect().process: each element through its side's function, in arrival order.
// - connect().keyBy().process: both sides share one key's state (a per-key threshold set by
//   the second side gates the first side's elements) and its event-time timers, which fire
//   when the minimum of both inputs' watermarks passes them.
// - join().where().equalTo().window(): every same-key pair in one window, late elements
//   (their window already fired at the joined watermark when they arrived) dropped.
import { transformHarness, type TransformHarness } from '@codefeedr/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTransform } from './component.js';
import type { KeyedCoProcessFunction } from './connected-streams.js';
import type { DataStream } from './datastream.js';
import { Any } from './message-type.js';

interface El {
  id: string;
  key: string;
  ts: number;
  n: number;
}

type Step =
  | { kind: 'send'; input: 0 | 1; elements: El[] }
  | { kind: 'watermark'; input: 0 | 1; watermark: number };

function twoInputStage(transform: (a: DataStream<El>, b: DataStream<El>) => DataStream<unknown>) {
  return defineTransform({
    name: 'connected-streams-test',
    description: 'a two-input graph of the connected-streams tests',
    configSchema: z.object({}),
    inputTypes: [Any, Any] as const,
    outputType: Any,
    transform: ([a, b]) => transform(a as DataStream<El>, b as DataStream<El>),
  }).create('two-inputs');
}

function drive(h: TransformHarness, steps: readonly Step[]): void {
  for (const step of steps) {
    if (step.kind === 'send')
      h.send(step.elements, { input: step.input, timestamp: (e) => (e as El).ts });
    else h.advanceWatermark(step.watermark, { input: step.input });
  }
}

/** Elements with unique ids, random sides, keys, times and values, in random batches, with watermarks between. */
const stepsArb: fc.Arbitrary<Step[]> = fc
  .array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('send' as const),
          input: fc.constantFrom(0 as const, 1 as const),
          elements: fc.array(
            fc.record({
              key: fc.constantFrom('a', 'b', 'c'),
              ts: fc.integer({ min: 0, max: 40 }),
              n: fc.integer({ min: 0, max: 9 }),
            }),
            { maxLength: 6 },
          ),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('watermark' as const),
          input: fc.constantFrom(0 as const, 1 as const),
          watermark: fc.integer({ min: -2, max: 45 }),
        }),
      },
    ),
    { maxLength: 30 },
  )
  .map((steps) => {
    let n = 0;
    return steps.map((s): Step =>
      s.kind === 'send'
        ? {
            ...s,
            elements: s.elements.map((e) => ({ ...e, id: `${s.input === 0 ? 'A' : 'B'}${n++}` })),
          }
        : s,
    );
  });

/** The joined watermark (min over both inputs) after each step; the harness's inputs start at −∞. */
function joinedWatermarks(steps: readonly Step[]): number[] {
  const watermarks = [-Infinity, -Infinity];
  return steps.map((step) => {
    if (step.kind === 'watermark')
      watermarks[step.input] = Math.max(watermarks[step.input]!, step.watermark);
    return Math.min(...watermarks);
  });
}

describe('connect().process', () => {
  const stage = twoInputStage((a, b) =>
    a.connect(b).process<string>({
      processElement1: (e, ctx, out) => out.collect(`1:${e.id}@${ctx.timestamp}`),
      processElement2: (e, ctx, out) => {
        out.collect(`2:${e.id}@${ctx.timestamp}`);
        if (e.n === 0) out.collect(`2:${e.id}:again`);
      },
    }),
  );

  it('sends each element to its side’s function, in arrival order', () => {
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const h = transformHarness(stage);
        drive(h, steps);
        h.finish();
        const expected = steps.flatMap((s) =>
          s.kind !== 'send'
            ? []
            : s.elements.flatMap((e) =>
                s.input === 0
                  ? [`1:${e.id}@${e.ts}`]
                  : [`2:${e.id}@${e.ts}`, ...(e.n === 0 ? [`2:${e.id}:again`] : [])],
              ),
        );
        expect(h.values).toEqual(expected);
        expect(h.deadLetters).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a function without processElement1/2 when the graph is built', () => {
    const broken = twoInputStage((a, b) =>
      a.connect(b).process({ processElement1: () => undefined } as never),
    );
    // By code: the harness builds the graph with core's dist, these tests import its source.
    expect(() => transformHarness(broken)).toThrow(
      expect.objectContaining({
        code: 'DATAFLOW_GRAPH_INVALID',
        message: expect.stringMatching(/processElement2 must be a function/),
      }),
    );
  });
});

describe('connect().keyBy().process', () => {
  // The second side sets a key's threshold; the first side's elements pass when their n is
  // at least the key's threshold (no threshold yet: pass). Each passing element also registers
  // a timer at ts + 5 that reports the key's number of passed elements when it fires.
  const fn: KeyedCoProcessFunction<El, El, string> = {
    processElement1(e, ctx, out) {
      const threshold = ctx.state<number>('threshold').value();
      if (threshold !== undefined && e.n < threshold) return;
      const passed = ctx.state<number>('passed');
      passed.update((passed.value() ?? 0) + 1);
      out.collect(`pass:${e.id}`);
      ctx.timerService.registerEventTimeTimer(e.ts + 5);
    },
    processElement2(e, ctx) {
      ctx.state<number>('threshold').update(e.n);
    },
    onTimer(time, ctx, out) {
      out.collect(`timer:${ctx.key}@${time}:${ctx.state<number>('passed').value()}`);
    },
  };
  const stage = twoInputStage((a, b) =>
    a
      .connect(b)
      .keyBy(
        (e) => e.key,
        (e) => e.key,
      )
      .process(fn),
  );

  /**
   * The naive run: per key a threshold, a passed count and a set of timers; after each step the
   * timers at or below the joined watermark fire in time order, then key order (a timer
   * registered at or below the watermark waits for its next advance, as Flink's). At the end
   * of input every remaining timer fires.
   */
  function reference(steps: readonly Step[]): string[] {
    const threshold = new Map<string, number>();
    const passed = new Map<string, number>();
    const timers = new Map<string, Set<number>>();
    const out: string[] = [];
    const watermarks = joinedWatermarks(steps);
    let watermark = -Infinity;
    const fire = (upTo: number) => {
      const due: [number, string][] = [];
      for (const [key, times] of timers) for (const t of times) if (t <= upTo) due.push([t, key]);
      due.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
      for (const [t, key] of due) {
        timers.get(key)!.delete(t);
        out.push(`timer:${key}@${t}:${passed.get(key)}`);
      }
    };
    steps.forEach((step, i) => {
      if (step.kind === 'send')
        for (const e of step.elements) {
          if (step.input === 1) {
            threshold.set(e.key, e.n);
            continue;
          }
          const limit = threshold.get(e.key);
          if (limit !== undefined && e.n < limit) continue;
          passed.set(e.key, (passed.get(e.key) ?? 0) + 1);
          out.push(`pass:${e.id}`);
          if (!timers.has(e.key)) timers.set(e.key, new Set());
          timers.get(e.key)!.add(e.ts + 5);
        }
      if (watermarks[i]! > watermark) {
        watermark = watermarks[i]!;
        fire(watermark);
      }
    });
    fire(Infinity);
    return out;
  }

  it('shares each key’s state and timers between both sides; timers fire on the joined watermark', () => {
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const h = transformHarness(stage);
        drive(h, steps);
        h.finish();
        expect(h.values).toEqual(reference(steps));
        expect(h.deadLetters).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('restores from a snapshot taken at any step with the same result as an uninterrupted run', () => {
    fc.assert(
      fc.property(stepsArb, fc.nat(), (steps, at) => {
        const cut = steps.length === 0 ? 0 : at % (steps.length + 1);
        const first = transformHarness(stage);
        drive(first, steps.slice(0, cut));
        const second = first.restarted();
        drive(second, steps.slice(cut));
        second.finish();
        expect([...first.values, ...second.values]).toEqual(reference(steps));
      }),
      { numRuns: 200 },
    );
  });

  it('holds timers until the slower side’s watermark passes them', () => {
    const h = transformHarness(stage);
    h.send([{ id: 'A0', key: 'a', ts: 10, n: 1 }], { input: 0, timestamp: 10 });
    h.advanceWatermark(100, { input: 0 });
    expect(h.values).toEqual(['pass:A0']);
    h.advanceWatermark(14, { input: 1 });
    expect(h.values).toEqual(['pass:A0']);
    h.advanceWatermark(15, { input: 1 });
    expect(h.values).toEqual(['pass:A0', 'timer:a@15:1']);
  });

  it('dead-letters an element whose function throws with its input and original value, and goes on', () => {
    const throwing = twoInputStage((a, b) =>
      a
        .connect(b)
        .keyBy(
          (e) => e.key,
          (e) => e.key,
        )
        .process<string>({
          processElement1: (e, _ctx, out) => out.collect(e.id),
          processElement2: (e) => {
            if (e.n === 7) throw new Error('seven is not a threshold');
          },
        }),
    );
    const h = transformHarness(throwing);
    h.send([{ id: 'B0', key: 'a', ts: 1, n: 7 }], { input: 1, timestamp: 1 });
    h.send([{ id: 'A1', key: 'a', ts: 2, n: 0 }], { input: 0, timestamp: 2 });
    expect(h.values).toEqual(['A1']);
    expect(h.deadLetters).toHaveLength(1);
    // The original record of its input, not the operator's internal tagged form.
    expect(h.deadLetters[0]!.record.value).toEqual({ id: 'B0', key: 'a', ts: 1, n: 7 });
    expect(h.deadLetters[0]!.inputIndex).toBe(1);
    expect(String(h.deadLetters[0]!.error)).toMatch(/seven is not a threshold/);
  });
});

describe('join().where().equalTo().window()', () => {
  const size = 10;
  const stage = twoInputStage((a, b) =>
    a
      .join(b)
      .where((e) => e.key)
      .equalTo((e) => e.key)
      .window({ type: 'tumbling', sizeMs: size })
      .apply((x, y, window) => `${x.id}+${y.id}@${window.start}`),
  );

  /**
   * The naive window join: an element is dropped when its window's last timestamp is at or
   * below the joined watermark at its arrival (the window fired already; no allowed lateness);
   * every remaining first-side element pairs with every remaining second-side element of its
   * key and window.
   */
  function reference(steps: readonly Step[]): string[] {
    const watermarks = joinedWatermarks(steps);
    const kept: { side: 0 | 1; e: El; start: number }[] = [];
    steps.forEach((step, i) => {
      if (step.kind !== 'send') return;
      const watermark = i === 0 ? -Infinity : watermarks[i - 1]!;
      for (const e of step.elements) {
        const start = Math.floor(e.ts / size) * size;
        if (start + size - 1 <= watermark) continue;
        kept.push({ side: step.input, e, start });
      }
    });
    const out: string[] = [];
    for (const x of kept)
      for (const y of kept)
        if (x.side === 0 && y.side === 1 && x.e.key === y.e.key && x.start === y.start)
          out.push(`${x.e.id}+${y.e.id}@${x.start}`);
    return out.sort();
  }

  it('pairs every same-key element of both sides in one window, as a nested loop does', () => {
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const h = transformHarness(stage);
        drive(h, steps);
        h.finish();
        expect([...(h.values as string[])].sort()).toEqual(reference(steps));
        for (const r of h.output) {
          const start = Number(String(r.value).split('@')[1]);
          expect(r.timestamp).toBe(start + size - 1);
        }
        expect(h.deadLetters).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('emits a window’s pairs when the slower side’s watermark passes its end, and nothing for one-sided windows', () => {
    const h = transformHarness(stage);
    h.send(
      [
        { id: 'A0', key: 'a', ts: 1, n: 0 },
        { id: 'A1', key: 'a', ts: 3, n: 0 },
        { id: 'A2', key: 'b', ts: 4, n: 0 },
      ],
      { input: 0, timestamp: (e) => (e as El).ts },
    );
    h.send([{ id: 'B0', key: 'a', ts: 8, n: 0 }], { input: 1, timestamp: 8 });
    h.advanceWatermark(50, { input: 0 });
    expect(h.values).toEqual([]);
    h.advanceWatermark(9, { input: 1 });
    expect(h.output.map((r) => [r.value, r.timestamp])).toEqual([
      ['A0+B0@0', 9],
      ['A1+B0@0', 9],
    ]);
  });
});
