// Broadcast state against naive references, driven through the testkit's transform harness
// with random elements, batch splits and watermark interleavings:
// - keyBy().connect(rules.broadcast()).process: the rules input sets a limit per event type
//   in the broadcast state; each event passes when its n reaches its type's limit, counted per
//   key in keyed state; timers read the broadcast state when they fire on the joined watermark.
// - connect(rules.broadcast()).process without a key.
// - restores from a snapshot at any step; graphs that would process a broadcast input once
//   per worker are refused.
import { transformHarness, type TransformHarness } from '@codefeedr/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { KeyedBroadcastProcessFunction } from './broadcast-state.js';
import { defineTransform } from './component.js';
import { compileTransform } from './compile-transform.js';
import type { DataStream } from './datastream.js';
import { Any } from './message-type.js';

interface Ev {
  id: string;
  key: string;
  type: string;
  ts: number;
  n: number;
}
interface Rule {
  type: string;
  /** null deletes the type's limit. */
  min: number | null;
}

type Step =
  | { kind: 'events'; elements: Ev[] }
  | { kind: 'rules'; elements: Rule[] }
  | { kind: 'watermark'; input: 0 | 1; watermark: number };

function stage(
  transform: (events: DataStream<Ev>, rules: DataStream<Rule>) => DataStream<unknown>,
) {
  return defineTransform({
    name: 'broadcast-state-test',
    description: 'a broadcast graph of the broadcast-state tests',
    configSchema: z.object({}),
    inputTypes: [Any, Any] as const,
    outputType: Any,
    transform: ([events, rules]) => transform(events as DataStream<Ev>, rules as DataStream<Rule>),
  }).create('rules-and-events');
}

function drive(h: TransformHarness, steps: readonly Step[]): void {
  for (const step of steps) {
    if (step.kind === 'events') h.send(step.elements, { input: 0, timestamp: (e) => (e as Ev).ts });
    else if (step.kind === 'rules') h.send(step.elements, { input: 1, timestamp: 0 });
    else h.advanceWatermark(step.watermark, { input: step.input });
  }
}

const TYPES = ['push', 'issue', 'star'] as const;

const stepsArb: fc.Arbitrary<Step[]> = fc
  .array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('events' as const),
          elements: fc.array(
            fc.record({
              key: fc.constantFrom('a', 'b', 'c'),
              type: fc.constantFrom(...TYPES),
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
          kind: fc.constant('rules' as const),
          elements: fc.array(
            fc.record({
              type: fc.constantFrom(...TYPES),
              min: fc.option(fc.integer({ min: 0, max: 9 }), { nil: null }),
            }),
            { maxLength: 3 },
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
      s.kind === 'events'
        ? { ...s, elements: s.elements.map((e) => ({ ...e, id: `E${n++}` })) }
        : s,
    );
  });

/**
 * Events pass when their n reaches their type's limit (no limit: pass); a passing event counts
 * for its key and sets a timer at ts + 5 that reports the key's count and the limit of the
 * event's type as the broadcast state has it when the timer fires.
 */
const keyedFn: KeyedBroadcastProcessFunction<Ev, Rule, string> = {
  processElement(e, ctx, out) {
    const limit = ctx.broadcastState<number>('limits').get(e.type);
    if (limit !== undefined && e.n < limit) return;
    const passed = ctx.state<number>('passed');
    passed.update((passed.value() ?? 0) + 1);
    ctx.mapState<string, string>('types').put(String(e.ts + 5), e.type);
    out.collect(`pass:${e.id}:${ctx.key}`);
    ctx.timerService.registerEventTimeTimer(e.ts + 5);
  },
  processBroadcastElement(rule, ctx) {
    const limits = ctx.broadcastState<number>('limits');
    if (rule.min === null) limits.delete(rule.type);
    else limits.set(rule.type, rule.min);
  },
  onTimer(time, ctx, out) {
    const type = ctx.mapState<string, string>('types').get(String(time))!;
    const limit = ctx.broadcastState<number>('limits').get(type);
    out.collect(
      `timer:${ctx.key}@${time}:${ctx.state<number>('passed').value()}:${type}<${limit ?? '-'}`,
    );
  },
};

const keyedStage = stage((events, rules) =>
  events
    .keyBy((e) => e.key)
    .connect(rules.broadcast())
    .process(keyedFn),
);

function keyedReference(steps: readonly Step[]): string[] {
  const limits = new Map<string, number>();
  const passed = new Map<string, number>();
  const timers = new Map<string, Map<number, string>>(); // key -> time -> type (last one set)
  const out: string[] = [];
  const watermarks = [-Infinity, -Infinity];
  let watermark = -Infinity;
  const fire = (upTo: number) => {
    const due: [number, string][] = [];
    for (const [key, times] of timers)
      for (const t of times.keys()) if (t <= upTo) due.push([t, key]);
    due.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
    for (const [t, key] of due) {
      const type = timers.get(key)!.get(t)!;
      timers.get(key)!.delete(t);
      out.push(`timer:${key}@${t}:${passed.get(key)}:${type}<${limits.get(type) ?? '-'}`);
    }
  };
  for (const step of steps) {
    if (step.kind === 'rules')
      for (const r of step.elements) {
        if (r.min === null) limits.delete(r.type);
        else limits.set(r.type, r.min);
      }
    else if (step.kind === 'events')
      for (const e of step.elements) {
        const limit = limits.get(e.type);
        if (limit !== undefined && e.n < limit) continue;
        passed.set(e.key, (passed.get(e.key) ?? 0) + 1);
        out.push(`pass:${e.id}:${e.key}`);
        if (!timers.has(e.key)) timers.set(e.key, new Map());
        timers.get(e.key)!.set(e.ts + 5, e.type);
      }
    else watermarks[step.input] = Math.max(watermarks[step.input]!, step.watermark);
    const joined = Math.min(...watermarks);
    if (joined > watermark) {
      watermark = joined;
      fire(watermark);
    }
  }
  fire(Infinity);
  return out;
}

describe('keyBy().connect(broadcast()).process', () => {
  it('every event reads the rules broadcast before it; keyed state and timers as keyBy().process', () => {
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const h = transformHarness(keyedStage);
        drive(h, steps);
        h.finish();
        expect(h.values).toEqual(keyedReference(steps));
        expect(h.deadLetters).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('restores broadcast and keyed state from a snapshot taken at any step', () => {
    fc.assert(
      fc.property(stepsArb, fc.nat(), (steps, at) => {
        const cut = steps.length === 0 ? 0 : at % (steps.length + 1);
        const first = transformHarness(keyedStage);
        drive(first, steps.slice(0, cut));
        const second = first.restarted();
        drive(second, steps.slice(cut));
        second.finish();
        expect([...first.values, ...second.values]).toEqual(keyedReference(steps));
      }),
      { numRuns: 200 },
    );
  });

  it('dead-letters a broadcast element whose function throws, with its input and value, and goes on', () => {
    const throwing = stage((events, rules) =>
      events
        .keyBy((e) => e.key)
        .connect(rules.broadcast())
        .process<string>({
          processElement: (e, ctx, out) =>
            out.collect(`${e.id}:${ctx.broadcastState<number>('limits').get(e.type) ?? '-'}`),
          processBroadcastElement: (rule, ctx) => {
            if (rule.min === 7) throw new Error('seven is not a limit');
            ctx.broadcastState<number>('limits').set(rule.type, rule.min!);
          },
        }),
    );
    const h = transformHarness(throwing);
    h.send(
      [
        { type: 'push', min: 7 },
        { type: 'push', min: 3 },
      ],
      { input: 1, timestamp: 1 },
    );
    h.send([{ id: 'E0', key: 'a', type: 'push', ts: 2, n: 0 }], { input: 0, timestamp: 2 });
    expect(h.values).toEqual(['E0:3']);
    expect(h.deadLetters).toHaveLength(1);
    expect(h.deadLetters[0]!.record.value).toEqual({ type: 'push', min: 7 });
    expect(h.deadLetters[0]!.inputIndex).toBe(1);
    expect(String(h.deadLetters[0]!.error)).toMatch(/seven is not a limit/);
  });
});

describe('connect(broadcast()).process', () => {
  const plain = stage((events, rules) =>
    events.connect(rules.broadcast()).process<string>({
      processElement(e, ctx, out) {
        const limits = ctx.broadcastState<number>('limits');
        const limit = limits.get(e.type);
        if (limit === undefined || e.n >= limit) out.collect(`${e.id}/${limits.size}`);
      },
      processBroadcastElement(rule, ctx, out) {
        const limits = ctx.broadcastState<number>('limits');
        if (rule.min === null) limits.delete(rule.type);
        else limits.set(rule.type, rule.min);
        out.collect(
          `rules:${limits
            .entries()
            .map(([t, m]) => `${t}=${m}`)
            .join(',')}`,
        );
      },
    }),
  );

  function reference(steps: readonly Step[]): string[] {
    const limits = new Map<string, number>();
    const out: string[] = [];
    for (const step of steps) {
      if (step.kind === 'rules')
        for (const r of step.elements) {
          if (r.min === null) limits.delete(r.type);
          else limits.set(r.type, r.min);
          out.push(`rules:${[...limits].map(([t, m]) => `${t}=${m}`).join(',')}`);
        }
      else if (step.kind === 'events')
        for (const e of step.elements) {
          const limit = limits.get(e.type);
          if (limit === undefined || e.n >= limit) out.push(`${e.id}/${limits.size}`);
        }
    }
    return out;
  }

  it('reads and writes the broadcast state in arrival order, and survives a restore', () => {
    fc.assert(
      fc.property(stepsArb, fc.nat(), (steps, at) => {
        const cut = steps.length === 0 ? 0 : at % (steps.length + 1);
        const first = transformHarness(plain);
        drive(first, steps.slice(0, cut));
        const second = first.restarted();
        drive(second, steps.slice(cut));
        second.finish();
        expect([...first.values, ...second.values]).toEqual(reference(steps));
      }),
      { numRuns: 200 },
    );
  });
});

describe('broadcast graphs', () => {
  const compile = (s: ReturnType<typeof stage>) =>
    compileTransform(
      s,
      {
        stageId: s.id,
        config: {},
        logger: { debug() {}, info() {}, warn() {}, error() {} },
      } as never,
      { deadLetter: () => undefined, retries: 0 },
    );

  it('reports the inputs every worker reads whole', () => {
    const chain = compile(keyedStage);
    expect(chain.broadcastInputs).toEqual([1]);
    expect(chain.keyed).toBe(true);
  });

  it('allows stateless operators above broadcast()', () => {
    const mapped = stage((events, rules) =>
      events.connect(rules.filter((r) => r.type !== 'star').broadcast()).process({
        processElement: () => undefined,
        processBroadcastElement: () => undefined,
      }),
    );
    expect(compile(mapped).broadcastInputs).toEqual([1]);
  });

  it('refuses a broadcast input that also feeds the other side', () => {
    const both = stage((events, rules) =>
      events
        .union(rules.map((r) => ({ id: r.type, key: r.type, type: r.type, ts: 0, n: 0 })))
        .connect(rules.broadcast())
        .process({ processElement: () => undefined, processBroadcastElement: () => undefined }),
    );
    expect(() => compile(both)).toThrow(
      expect.objectContaining({
        code: 'DATAFLOW_GRAPH_INVALID',
        message: expect.stringMatching(/feeds both broadcast\(\) and/),
      }),
    );
  });

  it('refuses broadcast() of a stream made by a keyed operator', () => {
    const keyed = stage((events, rules) =>
      events
        .connect(
          rules
            .keyBy((r) => r.type)
            .reduce((a) => a)
            .broadcast(),
        )
        .process({ processElement: () => undefined, processBroadcastElement: () => undefined }),
    );
    expect(() => compile(keyed)).toThrow(
      expect.objectContaining({
        code: 'DATAFLOW_GRAPH_INVALID',
        message: expect.stringMatching(/keyedReduce #\d+, which keeps state/),
      }),
    );
  });

  it('refuses a function without processBroadcastElement when the graph is built', () => {
    const broken = stage((events, rules) =>
      events.connect(rules.broadcast()).process({ processElement: () => undefined } as never),
    );
    expect(() => transformHarness(broken)).toThrow(
      expect.objectContaining({
        code: 'DATAFLOW_GRAPH_INVALID',
        message: expect.stringMatching(/processBroadcastElement/),
      }),
    );
  });
});
