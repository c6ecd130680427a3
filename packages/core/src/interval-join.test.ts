// The interval join against a naive reference: every (left, right) pair of one key, kept when
// the right's time is within the bounds of the left's and neither element was late (behind the
// join's watermark, the minimum of both inputs', when it arrived) — Flink's rules, including
// its cleanup edge (see reference()). Driven through the testkit's transform harness with random
// elements, batch splits and watermark interleavings; plus restarts from a snapshot at any
// point, and whole pipelines in every run mode.
import { transformHarness, type TransformHarness } from '@codefeedr/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineOutput, defineTransform } from './component.js';
import type { DataStream } from './datastream.js';
import { isCodefeedrError } from './errors.js';
import type { IntervalJoined } from './interval-join.js';
import { Any } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { RunMode } from './pipeline.js';
import type { JsonValue } from './record.js';
import { sequenceInput } from './sequence-input.js';
import type { Sink } from './sink.js';
import { DataflowGraphError, outputTag } from './stream-graph.js';

interface El {
  id: string;
  key: string;
  ts: number;
}

interface Joined {
  l: string;
  r: string;
  lt: number;
  rt: number;
  t: number;
}

interface Bounds {
  lower: number;
  upper: number;
  lowerExclusive: boolean;
  upperExclusive: boolean;
}

/** A transform over `inputs` untyped inputs, for graphs built in the tests. */
function untypedTransform(
  inputs: 1 | 2,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests cast their streams
  transform: (streams: readonly DataStream<any>[]) => DataStream<unknown> | undefined,
) {
  return defineTransform({
    name: 'interval-join-test',
    description: 'a graph of the interval join tests',
    configSchema: z.object({}),
    inputTypes: (inputs === 1 ? [Any] : [Any, Any]) as readonly (typeof Any)[],
    outputType: Any,
    transform: (streams) => transform(streams as readonly DataStream<unknown>[])!,
  });
}

const lateLeft = outputTag<El>('late-left');
const lateRight = outputTag<El>('late-right');

function joinStage(bounds: Bounds) {
  return untypedTransform(2, ([a, b]) => {
    let joined: IntervalJoined<El, El> = (a as DataStream<El>)
      .keyBy((e) => e.key)
      .intervalJoin((b as DataStream<El>).keyBy((e) => e.key))
      .between(bounds.lower, bounds.upper);
    if (bounds.lowerExclusive) joined = joined.lowerBoundExclusive();
    if (bounds.upperExclusive) joined = joined.upperBoundExclusive();
    return joined
      .sideOutputLeftLateData(lateLeft)
      .sideOutputRightLateData(lateRight)
      .process<Joined>({
        processElement(l, r, ctx, out) {
          expect(ctx.key).toBe(l.key);
          out.collect({
            l: l.id,
            r: r.id,
            lt: ctx.leftTimestamp,
            rt: ctx.rightTimestamp,
            t: ctx.timestamp,
          });
        },
      }) as DataStream<unknown>;
  }).create('join');
}

type Step =
  | { kind: 'send'; input: 0 | 1; elements: El[] }
  | { kind: 'watermark'; input: 0 | 1; watermark: number };

interface Result {
  joined: (Joined & { timestamp: number })[];
  lateLeft: string[];
  lateRight: string[];
}

/**
 * The naive join. An element is late when its time is below the join's watermark (min over
 * both inputs) at its arrival. A pair of elements that are not late joins when
 * `a.ts + lower <= b.ts <= a.ts + upper` (exclusive bounds: 1 ms inward), unless the earlier
 * of the two was already cleaned up when the later arrived: Flink drops an element when its
 * cleanup timer fires (left: ts + upper if upper > 0, right: ts − lower if lower < 0, else ts),
 * and a timer fires on the first advance of the join's watermark (the minimum over both
 * inputs) after it was registered that reaches its time — so a timer registered at or below
 * the current watermark waits for the next advance. This loses only a partner whose time
 * equals the watermark.
 */
function reference(bounds: Bounds, steps: Step[]): Result {
  const lower = bounds.lowerExclusive ? bounds.lower + 1 : bounds.lower;
  const upper = bounds.upperExclusive ? bounds.upper - 1 : bounds.upper;
  const watermarks = [-Infinity, -Infinity];
  const arrived: { side: 0 | 1; e: El; seq: number }[] = [];
  // Each advance of the join's watermark, after how many elements had arrived.
  const advances: { afterSeq: number; watermark: number }[] = [];
  const result: Result = { joined: [], lateLeft: [], lateRight: [] };
  for (const step of steps) {
    if (step.kind === 'watermark') {
      const before = Math.min(...watermarks);
      watermarks[step.input] = Math.max(watermarks[step.input]!, step.watermark);
      const after = Math.min(...watermarks);
      if (after > before) advances.push({ afterSeq: arrived.length, watermark: after });
      continue;
    }
    for (const e of step.elements) {
      const watermark = Math.min(...watermarks);
      if (e.ts < watermark) (step.input === 0 ? result.lateLeft : result.lateRight).push(e.id);
      else arrived.push({ side: step.input, e, seq: arrived.length });
    }
  }
  const cleanupTime = (side: 0 | 1, ts: number) =>
    side === 0 ? (upper > 0 ? ts + upper : ts) : -lower > 0 ? ts - lower : ts;
  // How many elements had arrived when the element's cleanup timer fired (Infinity: never).
  const cleanedAfter = (x: { side: 0 | 1; e: El; seq: number }) =>
    advances.find((a) => a.afterSeq > x.seq && a.watermark >= cleanupTime(x.side, x.e.ts))
      ?.afterSeq ?? Infinity;
  for (const a of arrived) {
    if (a.side !== 0) continue;
    for (const b of arrived) {
      if (b.side !== 1 || a.e.key !== b.e.key) continue;
      if (b.e.ts < a.e.ts + lower || b.e.ts > a.e.ts + upper) continue;
      const [earlier, later] = a.seq < b.seq ? [a, b] : [b, a];
      if (later.seq >= cleanedAfter(earlier)) continue;
      const t = Math.max(a.e.ts, b.e.ts);
      result.joined.push({ l: a.e.id, r: b.e.id, lt: a.e.ts, rt: b.e.ts, t, timestamp: t });
    }
  }
  return result;
}

function drive(h: TransformHarness, steps: readonly Step[]): void {
  for (const step of steps) {
    if (step.kind === 'send')
      h.send(step.elements, { input: step.input, timestamp: (e) => (e as El).ts });
    else h.advanceWatermark(step.watermark, { input: step.input });
  }
}

function resultOf(h: TransformHarness): Result {
  return {
    joined: h.output.map((r) => ({ ...(r.value as Joined), timestamp: r.timestamp })),
    lateLeft: h.sideOutput(lateLeft).map((r) => r.value.id),
    lateRight: h.sideOutput(lateRight).map((r) => r.value.id),
  };
}

const byPair = (a: Joined, b: Joined) =>
  a.l + a.r < b.l + b.r ? -1 : a.l + a.r > b.l + b.r ? 1 : 0;
const sorted = (r: Result): Result => ({ ...r, joined: [...r.joined].sort(byPair) });

const boundsArb: fc.Arbitrary<Bounds> = fc
  .record({
    lower: fc.integer({ min: -8, max: 8 }),
    width: fc.integer({ min: 0, max: 10 }),
    lowerExclusive: fc.boolean(),
    upperExclusive: fc.boolean(),
  })
  .map(({ lower, width, lowerExclusive, upperExclusive }) => ({
    lower,
    upper: lower + width,
    lowerExclusive,
    upperExclusive,
  }));

/** Elements with unique ids, random sides, keys and times, split into random batches, with watermarks between. */
const stepsArb: fc.Arbitrary<Step[]> = fc
  .array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('send' as const),
          input: fc.constantFrom(0 as const, 1 as const),
          elements: fc.array(
            fc.record({ key: fc.constantFrom('a', 'b'), ts: fc.integer({ min: 0, max: 24 }) }),
            { maxLength: 6 },
          ),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('watermark' as const),
          input: fc.constantFrom(0 as const, 1 as const),
          watermark: fc.integer({ min: -2, max: 30 }),
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
            elements: s.elements.map((e) => ({ ...e, id: `${s.input === 0 ? 'L' : 'R'}${n++}` })),
          }
        : s,
    );
  });

describe('intervalJoin', () => {
  it('joins each left element with the right elements of its key within [lower, upper] of its time', () => {
    const h = transformHarness(
      joinStage({ lower: -2, upper: 1, lowerExclusive: false, upperExclusive: false }),
      {
        sideOutputs: [lateLeft, lateRight],
      },
    );
    h.send(
      [
        { id: 'L0', key: 'a', ts: 10 },
        { id: 'L1', key: 'b', ts: 10 },
      ],
      { input: 0, timestamp: (e) => (e as El).ts },
    );
    h.send(
      [
        { id: 'R0', key: 'a', ts: 7 }, // 10 - 3: below
        { id: 'R1', key: 'a', ts: 8 }, // 10 - 2
        { id: 'R2', key: 'a', ts: 11 }, // 10 + 1
        { id: 'R3', key: 'a', ts: 12 }, // above
        { id: 'R4', key: 'c', ts: 10 }, // other key
      ],
      { input: 1, timestamp: (e) => (e as El).ts },
    );
    expect(h.output.map((r) => [r.key, r.value, r.timestamp])).toEqual([
      ['a', { l: 'L0', r: 'R1', lt: 10, rt: 8, t: 10 }, 10],
      ['a', { l: 'L0', r: 'R2', lt: 10, rt: 11, t: 11 }, 11],
    ]);
  });

  it('drops late elements (time below the joined watermark) or sends them to the late tags, and cleans up its buffers', () => {
    const h = transformHarness(
      joinStage({ lower: 0, upper: 5, lowerExclusive: false, upperExclusive: false }),
      {
        sideOutputs: [lateLeft, lateRight],
      },
    );
    h.send([{ id: 'L0', key: 'a', ts: 10 }], { input: 0, timestamp: 10 });
    h.advanceWatermark(20, { input: 0 });
    // Input 1 still holds the join's watermark at -inf: nothing is late, nothing cleaned.
    h.send([{ id: 'R0', key: 'a', ts: 14 }], { input: 1, timestamp: 14 });
    h.advanceWatermark(12, { input: 1 }); // joined watermark 12
    h.send([{ id: 'R1', key: 'a', ts: 11 }], { input: 1, timestamp: 11 }); // late
    h.send([{ id: 'L1', key: 'a', ts: 9 }], { input: 0, timestamp: 9 }); // late
    h.send([{ id: 'R2', key: 'a', ts: 15 }], { input: 1, timestamp: 15 }); // joins L0 (15 = 10 + 5)
    expect(h.values).toEqual([
      { l: 'L0', r: 'R0', lt: 10, rt: 14, t: 14 },
      { l: 'L0', r: 'R2', lt: 10, rt: 15, t: 15 },
    ]);
    expect(h.sideOutput(lateRight).map((r) => [r.value.id, r.timestamp])).toEqual([['R1', 11]]);
    expect(h.sideOutput(lateLeft).map((r) => [r.value.id, r.timestamp])).toEqual([['L1', 9]]);
    h.advanceWatermark(30, { input: 1 });
    const state = h.snapshot() as {
      operators: Record<
        string,
        { kind: string; state: { states: Record<string, unknown[]>; timers: unknown[] } }
      >;
    };
    const join = Object.values(state.operators).find((o) => o.kind === 'keyedProcess')!;
    expect(join.state.states).toEqual({ left: [], right: [] });
    expect(join.state.timers).toEqual([]);
  });

  it('equals the naive nested-loop join for random elements, bounds, batch splits and watermark interleavings', () => {
    fc.assert(
      fc.property(boundsArb, stepsArb, (bounds, steps) => {
        const h = transformHarness(joinStage(bounds), { sideOutputs: [lateLeft, lateRight] });
        drive(h, steps);
        h.finish();
        expect(sorted(resultOf(h))).toEqual(sorted(reference(bounds, steps)));
        expect(h.deadLetters).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  });

  it('a restart from a snapshot at any point continues exactly as the uninterrupted run', () => {
    fc.assert(
      fc.property(boundsArb, stepsArb, fc.nat(), (bounds, steps, at) => {
        const cut = steps.length === 0 ? 0 : at % (steps.length + 1);
        const whole = transformHarness(joinStage(bounds), { sideOutputs: [lateLeft, lateRight] });
        drive(whole, steps);
        whole.finish();
        const first = transformHarness(joinStage(bounds), { sideOutputs: [lateLeft, lateRight] });
        drive(first, steps.slice(0, cut));
        const second = first.restarted();
        drive(second, steps.slice(cut));
        second.finish();
        const a = resultOf(first);
        const b = resultOf(second);
        expect({
          joined: [...a.joined, ...b.joined],
          lateLeft: [...a.lateLeft, ...b.lateLeft],
          lateRight: [...a.lateRight, ...b.lateRight],
        }).toEqual(resultOf(whole));
      }),
      { numRuns: 200 },
    );
  });

  it('side outputs of the join function carry the pair time; a throwing function dead-letters the element without buffering it', () => {
    const extra = outputTag<string>('extra');
    const stage = untypedTransform(
      2,
      ([a, b]) =>
        (a as DataStream<El>)
          .keyBy((e) => e.key)
          .intervalJoin((b as DataStream<El>).keyBy((e) => e.key))
          .between(-10, 10)
          .process<string>({
            processElement(l, r, ctx, out) {
              if (r.id === 'boom') throw new Error('boom');
              ctx.output(extra, `${l.id}+${r.id}`);
              out.collect(`${l.id}=${r.id}`, 99);
            },
          }) as DataStream<unknown>,
    ).create('join');
    const h = transformHarness(stage, { sideOutputs: [extra], retries: 1 });
    h.send([{ id: 'L0', key: 'k', ts: 5 }], { input: 0, timestamp: 5 });
    h.send([{ id: 'boom', key: 'k', ts: 6 }], { input: 1, timestamp: 6 });
    h.send([{ id: 'R1', key: 'k', ts: 8 }], { input: 1, timestamp: 8 });
    h.send([{ id: 'L2', key: 'k', ts: 1 }], { input: 0, timestamp: 1 });
    expect(h.output.map((r) => [r.value, r.timestamp])).toEqual([
      ['L0=R1', 99],
      ['L2=R1', 99],
    ]);
    expect(h.sideOutput(extra).map((r) => [r.value, r.timestamp])).toEqual([
      ['L0+R1', 8],
      ['L2+R1', 8],
    ]);
    expect(h.deadLetters.map((d) => [(d.record.value as El).id, d.attempts])).toEqual([
      ['boom', 2],
    ]);
  });

  it('refuses bounds Flink refuses and keyed streams of another transform', () => {
    const graphErrors: unknown[] = [];
    const stage = untypedTransform(2, ([a, b]) => {
      const join = (a as DataStream<El>)
        .keyBy((e) => e.key)
        .intervalJoin((b as DataStream<El>).keyBy((e) => e.key));
      for (const [lo, hi] of [
        [5, 1],
        [0.5, 1],
        [0, Infinity],
      ] as const) {
        try {
          join.between(lo, hi);
        } catch (error) {
          graphErrors.push(error);
        }
      }
      return a;
    }).create('bad');
    transformHarness(stage);
    expect(graphErrors).toHaveLength(3);
    for (const error of graphErrors) {
      expect(error).toBeInstanceOf(DataflowGraphError);
      expect(isCodefeedrError(error) && error.code).toBe('DATAFLOW_GRAPH_INVALID');
    }
    let foreign: DataStream<El> | undefined;
    const capture = untypedTransform(1, ([a]) => {
      foreign = a as DataStream<El>;
      return a;
    }).create('capture');
    transformHarness(capture);
    const other = untypedTransform(
      1,
      ([a]) =>
        (a as DataStream<El>)
          .keyBy((e) => e.key)
          .intervalJoin(foreign!.keyBy((e) => e.key))
          .between(0, 1)
          .process({ processElement: () => {} }) as DataStream<unknown>,
    ).create('other');
    expect(() => transformHarness(other)).toThrow(DataflowGraphError);
  });
});

describe('intervalJoin in a pipeline', () => {
  /** Two sequences 0..199 (event time = value), keyed by n / 5, the right 0..3 ms after the left. */
  function pipeline(mode: RunMode, stored: JsonValue[]) {
    const join = untypedTransform(
      2,
      ([a, b]) =>
        (a as DataStream<number>)
          .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
          .keyBy((n) => String(Math.floor(n / 5)))
          .intervalJoin(
            (b as DataStream<number>)
              .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
              .keyBy((n) => String(Math.floor(n / 5))),
          )
          .between(0, 3)
          .process<[number, number]>({
            processElement: (l, r, _ctx, out) => out.collect([l, r]),
          }) as DataStream<unknown>,
    );
    const store = defineOutput({
      name: 'store',
      description: 'keeps what it gets',
      configSchema: z.object({}),
      inputTypes: [Any] as const,
      createSink: (): Sink<unknown> => ({
        write: (batch) => {
          for (const r of batch) stored.push(r.value as JsonValue);
        },
        flush: async () => {},
        close: async () => {},
      }),
    });
    const left = sequenceInput.create('left', { from: 0, to: 199, timestamps: 'value' });
    const right = sequenceInput.create('right', { from: 0, to: 199, timestamps: 'value' });
    const joined = join.create('join');
    return new PipelineBuilder(`interval-join-${mode}`)
      .add(left)
      .add(right)
      .addParents(joined, [left, right])
      .edge(joined, store.create('store'))
      .build();
  }

  for (const mode of ['inline', 'local'] as const) {
    it(`joins in ${mode} mode as the nested loop does`, async () => {
      const stored: JsonValue[] = [];
      const summary = await pipeline(mode, stored).run({ mode });
      expect(summary.status).toBe('finished');
      const expected: [number, number][] = [];
      // Each input is in event-time order and the join's watermark is the slower one's, so
      // nothing is late and every pair within the bounds joins.
      for (let l = 0; l <= 199; l++)
        for (let r = 0; r <= 199; r++)
          if (Math.floor(l / 5) === Math.floor(r / 5) && r >= l && r <= l + 3)
            expected.push([l, r]);
      const key = (p: JsonValue) => JSON.stringify(p);
      expect(stored.map(key).sort()).toEqual(expected.map(key).sort());
    });
  }
});
