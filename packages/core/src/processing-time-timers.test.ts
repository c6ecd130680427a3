// Processing-time timers next to event-time ones (Flink's InternalTimerServiceImpl: one queue
// per time domain, one timer per key and time, fired in time order, those registered while
// firing included), against a naive reference: Sets of (key, time) per domain scanned for the
// earliest due timer. Random interleavings of records (registering and deleting timers of both
// domains), watermarks and clock advances through the testkit's transform harness and its fake
// clock; a restart from a snapshot at any point; and real runs whose ticks fire the timers.
import { transformHarness, type TransformHarness } from '@codefeedr/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineOutput, defineTransform } from './component.js';
import type { DataStream, TimeDomain } from './datastream.js';
import { Any } from './message-type.js';
import type { RunMode } from './pipeline.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { JsonValue, StreamRecord } from './record.js';
import { sequenceInput } from './sequence-input.js';

/** A one-input transform over Any (the tests cast their streams). */
function untypedTransform(
  name: string,
  description: string,
  transform: (inputs: readonly DataStream<unknown>[]) => DataStream<unknown>,
) {
  return defineTransform({
    name,
    description,
    configSchema: z.object({}),
    inputTypes: [Any],
    outputType: Any,
    transform: (inputs) => transform(inputs as readonly DataStream<unknown>[]),
  });
}

type TimerOp =
  | { op: 'regProc' | 'delProc'; d: number } // at processing time now + d
  | { op: 'regEvent' | 'delEvent'; t: number }
  | { op: 'chain'; n: number }; // the key's next n timers each register one 2 ms later

interface Input {
  key: string;
  ops: TimerOp[];
}

type Step =
  | { kind: 'send'; inputs: Input[] }
  | { kind: 'advance'; ms: number }
  | { kind: 'watermark'; w: number };

/** What onTimer emits: key, time, domain, processing time when it ran. */
type Fired = [string, number, TimeDomain, number];

const timerStage = untypedTransform(
  'timers',
  'registers and deletes timers as its records say; reports each timer firing',
  ([inputs]) =>
    (inputs as DataStream<Input>)
      .keyBy((i) => i.key)
      .process<Fired>({
        processElement(input, ctx) {
          const timers = ctx.timerService;
          for (const op of input.ops) {
            const now = timers.currentProcessingTime();
            if (op.op === 'regProc') timers.registerProcessingTimeTimer(now + op.d);
            else if (op.op === 'delProc') timers.deleteProcessingTimeTimer(now + op.d);
            else if (op.op === 'regEvent') timers.registerEventTimeTimer(op.t);
            else if (op.op === 'delEvent') timers.deleteEventTimeTimer(op.t);
            else ctx.state<number>('chain').update((op as { n: number }).n);
          }
        },
        onTimer(time, ctx, out) {
          const domain = ctx.timeDomain();
          out.collect([ctx.key, time, domain, ctx.timerService.currentProcessingTime()]);
          const chain = ctx.state<number>('chain');
          const n = chain.value() ?? 0;
          if (n <= 0) return;
          chain.update(n - 1);
          if (domain === 'processing') ctx.timerService.registerProcessingTimeTimer(time + 2);
          else ctx.timerService.registerEventTimeTimer(time + 2);
        },
      }) as DataStream<unknown>,
).create('timers');

/** The reference: a Set of "key|time" per domain, the earliest (time, key) fired first. */
function reference(steps: readonly Step[], start: number): Fired[] {
  const timers: Record<TimeDomain, Map<string, [string, number]>> = {
    event: new Map(),
    processing: new Map(),
  };
  const chains = new Map<string, number>();
  const out: Fired[] = [];
  let now = start;
  let watermark = -Infinity;
  const add = (d: TimeDomain, key: string, t: number) => timers[d].set(`${key}|${t}`, [key, t]);
  const fire = (d: TimeDomain, upTo: number) => {
    for (;;) {
      const due = [...timers[d].values()]
        .filter(([, t]) => t <= upTo)
        .sort(([ka, ta], [kb, tb]) => ta - tb || (ka < kb ? -1 : ka > kb ? 1 : 0));
      if (due.length === 0) return;
      const [key, t] = due[0]!;
      timers[d].delete(`${key}|${t}`);
      out.push([key, t, d, now]);
      const n = chains.get(key) ?? 0;
      if (n > 0) {
        chains.set(key, n - 1);
        add(d, key, t + 2);
      }
    }
  };
  for (const step of steps) {
    if (step.kind === 'send') {
      for (const { key, ops } of step.inputs) {
        for (const op of ops) {
          if (op.op === 'regProc') add('processing', key, now + op.d);
          else if (op.op === 'delProc') timers.processing.delete(`${key}|${now + op.d}`);
          else if (op.op === 'regEvent') add('event', key, op.t);
          else if (op.op === 'delEvent') timers.event.delete(`${key}|${op.t}`);
          else chains.set(key, (op as { n: number }).n);
        }
      }
    } else if (step.kind === 'advance') {
      now += step.ms;
      fire('processing', now);
    } else {
      // The harness injects the watermark, then ticks at the same clock.
      if (step.w > watermark) {
        watermark = step.w;
        fire('event', watermark);
      }
      fire('processing', now);
    }
  }
  // End of input fires event-time timers only: processing time stops with the run (Flink).
  fire('event', Infinity);
  return out;
}

function drive(h: TransformHarness, steps: readonly Step[]): void {
  for (const step of steps) {
    if (step.kind === 'send') h.send(step.inputs);
    else if (step.kind === 'advance') h.advanceTime(step.ms);
    else h.advanceWatermark(step.w);
  }
}

function fired(records: readonly StreamRecord[]): Fired[] {
  return records.map((r) => {
    const f = r.value as Fired;
    // Emitted with the timer's key and time.
    expect([r.key, r.timestamp]).toEqual([f[0], f[1]]);
    return f;
  });
}

const opArb: fc.Arbitrary<TimerOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom('regProc' as const, 'delProc' as const),
      d: fc.integer({ min: -3, max: 10 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom('regEvent' as const, 'delEvent' as const),
      t: fc.integer({ min: 0, max: 30 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('chain' as const), n: fc.nat(3) }) },
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      inputs: fc.array(
        fc.record({
          key: fc.constantFrom('a', 'b', 'c'),
          ops: fc.array(opArb, { minLength: 1, maxLength: 3 }),
        }),
        { maxLength: 3 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('watermark' as const),
      w: fc.integer({ min: -2, max: 35 }),
    }),
  },
);
const stepsArb = fc.array(stepArb, { maxLength: 30 });

describe('processing-time timers', () => {
  it('fire from clock advances, event-time ones from watermarks, as the reference does', () => {
    fc.assert(
      fc.property(stepsArb, (steps) => {
        const h = transformHarness(timerStage, { now: 0 });
        drive(h, steps);
        h.finish();
        expect(fired(h.output)).toEqual(reference(steps, 0));
        expect(h.deadLetters).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  });

  it('are checkpointed: a restart from a snapshot at any point continues as the uninterrupted run', () => {
    fc.assert(
      fc.property(stepsArb, fc.nat(), (steps, at) => {
        const cut = at % (steps.length + 1);
        const whole = transformHarness(timerStage, { now: 0 });
        drive(whole, steps);
        whole.finish();
        const first = transformHarness(timerStage, { now: 0 });
        drive(first, steps.slice(0, cut));
        const second = first.restarted();
        drive(second, steps.slice(cut));
        second.finish();
        expect(fired([...first.output, ...second.output])).toEqual(fired(whole.output));
      }),
      { numRuns: 300 },
    );
  });

  it('one timer per key and time; deleting one domain leaves the other; a past time fires at the next tick', () => {
    const h = transformHarness(timerStage, { now: 100 });
    h.send([
      {
        key: 'a',
        ops: [
          { op: 'regProc', d: 5 },
          { op: 'regProc', d: 5 },
        ],
      },
    ]);
    h.send([
      {
        key: 'a',
        ops: [
          { op: 'regEvent', t: 105 },
          { op: 'delEvent', t: 105 },
        ],
      },
    ]);
    expect(h.advanceTime(4)).toEqual([]);
    expect(h.advanceTime(1).map((r) => r.value)).toEqual([['a', 105, 'processing', 105]]);
    h.send([{ key: 'b', ops: [{ op: 'regProc', d: -50 }] }]);
    expect(h.advanceTime(0).map((r) => r.value)).toEqual([['b', 55, 'processing', 105]]);
    expect(h.finish()).toEqual([]);
  });

  async function runUntilFired(mode: RunMode): Promise<StreamRecord[]> {
    const clock = { now: 1_000_000 };
    const stop = new AbortController();
    const stored: StreamRecord[] = [];
    const store = defineOutput({
      name: 'store',
      description: 'keeps what it gets',
      configSchema: z.object({}),
      inputTypes: [Any] as const,
      createSink: () => ({
        write: (batch: readonly StreamRecord[]) => {
          stored.push(...batch);
          if (batch.some((r) => (r.value as { fired?: number }).fired !== undefined)) stop.abort();
        },
        flush: async () => {},
        close: async () => {},
      }),
    });
    const once = untypedTransform(
      'once',
      'a processing-time timer 1 s after the first number of each parity',
      ([numbers]) =>
        (numbers as DataStream<number>)
          .keyBy((n) => (n % 2 === 0 ? 'even' : 'odd'))
          .process<JsonValue>({
            processElement(n, ctx, out) {
              const first = ctx.state<boolean>('armed');
              if (first.value() === true) return;
              first.update(true);
              const at = ctx.timerService.currentProcessingTime() + 1_000;
              ctx.timerService.registerProcessingTimeTimer(at);
              out.collect({ armed: n, at });
            },
            onTimer(time, ctx, out) {
              out.collect({ fired: time, domain: ctx.timeDomain() });
            },
          }) as DataStream<unknown>,
    );
    const summary = await new PipelineBuilder(`processing-timers-${mode}`)
      .append(sequenceInput.create('numbers', { from: 0, ratePerSecond: 200 }))
      .append(once.create('once'))
      .append(store.create('store'))
      .build()
      // A fake clock that moves 50 ms per reading: ticks (every 5 ms of real time) make it pass
      // the timers' time within a few hundred readings, whatever the machine's speed.
      .run({ mode, clock: () => (clock.now += 50), tickIntervalMs: 5, signal: stop.signal });
    expect(summary.status).toBe('stopped');
    return stored;
  }

  for (const mode of ['inline', 'local'] as const) {
    it(`fire from the run's ticks on RunOptions.clock (${mode})`, async () => {
      const stored = await runUntilFired(mode);
      const armed = stored.filter((r) => 'armed' in (r.value as object));
      const firedRecords = stored.filter((r) => 'fired' in (r.value as object));
      expect(armed.length).toBe(2);
      expect(firedRecords.length).toBeGreaterThan(0);
      for (const r of firedRecords) {
        const { fired: time, domain } = r.value as { fired: number; domain: string };
        expect(domain).toBe('processing');
        expect(r.timestamp).toBe(time);
        expect(armed.map((a) => (a.value as { at: number }).at)).toContain(time);
      }
    }, 20_000);
  }
});

// ---- Processing-time windows on the same ticks: a Map of open windows as the reference. ----

type WindowStep =
  | { kind: 'send'; values: [string, number][] }
  | { kind: 'advance'; ms: number }
  | { kind: 'watermark'; w: number };

interface WindowCase {
  assigner:
    | { type: 'tumbling'; sizeMs: number; offsetMs: number; time: 'processing' }
    | { type: 'sliding'; sizeMs: number; slideMs: number; offsetMs: number; time: 'processing' };
  steps: WindowStep[];
}

/** [key, start, end, values] per fired window. */
type FiredWindow = [string, number, number, number[]];

function windowStage(assigner: WindowCase['assigner']) {
  return untypedTransform(
    'processing-windows',
    'collects each processing-time window',
    ([inputs]) =>
      (inputs as DataStream<[string, number]>)
        .keyBy(([k]) => k)
        .window(assigner)
        .process<FiredWindow>((key, w, values, out) =>
          out.collect([key, w.start, w.end, values.map(([, v]) => v)]),
        ) as DataStream<unknown>,
  ).create('windows');
}

const byJson = (a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);

/** Each step's fired windows, in a canonical order (same-time windows of several keys). */
function windowReference({ assigner, steps }: WindowCase, start: number): FiredWindow[][] {
  const open = new Map<string, FiredWindow>();
  let now = start;
  const slide = assigner.type === 'sliding' ? assigner.slideMs : assigner.sizeMs;
  return steps.map((step) => {
    if (step.kind === 'send') {
      for (const [key, v] of step.values) {
        const last = now - ((((now - assigner.offsetMs) % slide) + slide) % slide);
        for (let s = last; s > now - assigner.sizeMs; s -= slide) {
          const id = `${key}|${s}`;
          if (!open.has(id)) open.set(id, [key, s, s + assigner.sizeMs, []]);
          open.get(id)![3].push(v);
        }
      }
      return [];
    }
    if (step.kind === 'advance') now += step.ms;
    const due = [...open.entries()].filter(([, w]) => w[2] - 1 <= now);
    for (const [id] of due) open.delete(id);
    return due.map(([, w]) => w).sort(byJson);
  });
}

function driveWindows(h: TransformHarness, steps: readonly WindowStep[]): FiredWindow[][] {
  return steps.map((step) => {
    const out =
      step.kind === 'send'
        ? h.send(step.values)
        : step.kind === 'advance'
          ? h.advanceTime(step.ms)
          : h.advanceWatermark(step.w);
    return out
      .map((r) => {
        expect(r.timestamp).toBe((r.value as FiredWindow)[2] - 1);
        return r.value as FiredWindow;
      })
      .sort(byJson);
  });
}

const windowCaseArb: fc.Arbitrary<WindowCase> = fc.record({
  assigner: fc.oneof(
    fc
      .record({ sizeMs: fc.integer({ min: 1, max: 10 }), offset: fc.nat() })
      .map(({ sizeMs, offset }) => ({
        type: 'tumbling' as const,
        sizeMs,
        offsetMs: offset % sizeMs,
        time: 'processing' as const,
      })),
    fc
      .record({
        sizeMs: fc.integer({ min: 1, max: 10 }),
        slideMs: fc.integer({ min: 1, max: 6 }),
        offset: fc.nat(),
      })
      .map(({ sizeMs, slideMs, offset }) => ({
        type: 'sliding' as const,
        sizeMs,
        slideMs,
        offsetMs: offset % slideMs,
        time: 'processing' as const,
      })),
  ),
  steps: fc.array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('send' as const),
          values: fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.nat(99)), { maxLength: 4 }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('advance' as const),
          ms: fc.integer({ min: 0, max: 7 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('watermark' as const),
          w: fc.integer({ min: 0, max: 100 }),
        }),
      },
    ),
    { maxLength: 30 },
  ),
});

describe('processing-time windows', () => {
  it('tumbling and sliding windows assign by the clock and fire on its advances, as the reference does', () => {
    fc.assert(
      fc.property(windowCaseArb, (c) => {
        const h = transformHarness(windowStage(c.assigner), { now: 0 });
        expect(driveWindows(h, c.steps)).toEqual(windowReference(c, 0));
        // Processing time stops with the input: open windows do not fire (Flink's streaming mode).
        expect(h.finish()).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('a restart from a snapshot at any point continues as the uninterrupted run', () => {
    fc.assert(
      fc.property(windowCaseArb, fc.nat(), (c, at) => {
        const cut = at % (c.steps.length + 1);
        const whole = driveWindows(transformHarness(windowStage(c.assigner), { now: 0 }), c.steps);
        const first = transformHarness(windowStage(c.assigner), { now: 0 });
        const before = driveWindows(first, c.steps.slice(0, cut));
        const after = driveWindows(first.restarted(), c.steps.slice(cut));
        expect([...before, ...after]).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a window time it does not know, and processing time on session windows', () => {
    const bad = (assigner: unknown) => () =>
      transformHarness(windowStage(assigner as WindowCase['assigner']));
    expect(bad({ type: 'tumbling', sizeMs: 5, time: 'ingestion' })).toThrow(
      /window time "ingestion"/,
    );
    expect(bad({ type: 'session', gapMs: 5, time: 'processing' })).toThrow(/on a session window/);
  });
});
