import {
  Any,
  defineMessageType,
  defineTransform,
  outputTag,
  SchemaMismatchError,
  UserFunctionError,
  z,
  type KeyedProcessFunction,
  type TransformStage,
} from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { TransformHarnessError } from './errors.js';
import { transformHarness } from './transform-harness.js';

const Reading = defineMessageType(
  'test.Reading',
  1,
  z.object({ sensor: z.string(), value: z.number(), at: z.number() }),
);
type ReadingValue = z.output<typeof Reading.schema>;

const scale = defineTransform({
  name: 'scale',
  description: 'value × factor; a negative value is a bug in the data',
  configSchema: z.object({ factor: z.number().default(2) }),
  inputTypes: [Reading] as const,
  outputType: Reading,
  transform: ([readings], config) =>
    readings.map((r) => {
      if (r.value < 0) throw new Error(`negative reading ${r.value}`);
      return { ...r, value: r.value * config.factor };
    }),
});

const runningTotal = defineTransform({
  name: 'running-total',
  description: 'running sum of values per sensor',
  configSchema: z.object({}),
  inputTypes: [Reading] as const,
  outputType: Reading,
  transform: ([readings]) =>
    readings.keyBy((r) => r.sensor).reduce((a, b) => ({ ...b, value: a.value + b.value })),
});

const late = outputTag<ReadingValue>('late');
const windowSum = defineTransform({
  name: 'window-sum',
  description: 'sum per sensor per 10 ms of event time; late readings to a side output',
  configSchema: z.object({ idleTimeoutMs: z.number().optional() }),
  inputTypes: [Reading] as const,
  outputType: Reading,
  transform: ([readings], config) =>
    readings
      .assignTimestampsAndWatermarks({
        maxOutOfOrdernessMs: 0,
        timestampAssigner: (r) => r.at,
        ...(config.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: config.idleTimeoutMs }),
      })
      .keyBy((r) => r.sensor)
      .window({ type: 'tumbling', sizeMs: 10 })
      .sideOutputLateData(late)
      .reduce((a, b) => ({ ...b, value: a.value + b.value })),
});

const readings = (sensors: number, perSensor: number): ReadingValue[] =>
  Array.from({ length: sensors * perSensor }, (_, i) => ({
    sensor: `s${i % sensors}`,
    value: (i * 7) % 13,
    at: i,
  }));

/** Sum of values per sensor per 10 ms window, computed without the runtime. */
function expectedWindows(input: readonly ReadingValue[]): Map<string, number> {
  const sums = new Map<string, number>();
  for (const r of input) {
    const key = `${r.sensor}@${Math.floor(r.at / 10) * 10}`;
    sums.set(key, (sums.get(key) ?? 0) + r.value);
  }
  return sums;
}
const windowsOf = (out: readonly ReadingValue[]): Map<string, number> =>
  new Map(out.map((r) => [`${r.sensor}@${Math.floor(r.at / 10) * 10}`, r.value]));

/** A stage keying values by themselves into a keyed process function. */
function keyedStage(
  id: string,
  fn: KeyedProcessFunction<unknown, unknown>,
): TransformStage<[unknown], unknown> {
  return {
    kind: 'transform',
    id,
    config: {},
    inputTypes: [Any],
    outputType: Any,
    transform: ([input]) => input.keyBy((v) => String(v)).process(fn),
  };
}

describe('transformHarness', () => {
  it('runs a component with its config; bad input and throwing functions become dead letters', () => {
    const h = transformHarness(scale, { factor: 3 }, { retries: 2 });
    const input = readings(3, 5);
    const out = h.send(input, { timestamp: (r) => r.at, key: (r) => r.sensor });
    expect(out.map((r) => r.value)).toEqual(input.map((r) => ({ ...r, value: r.value * 3 })));
    expect(out.map((r) => [r.key, r.timestamp])).toEqual(input.map((r) => [r.sensor, r.at]));

    h.send([{ sensor: 'x', value: -1, at: 1 }, { sensor: 'x', value: 'high' } as never]);
    expect(h.output).toHaveLength(input.length);
    const [invalid, thrown] = h.deadLetters;
    expect(invalid!.error).toBeInstanceOf(SchemaMismatchError);
    expect(invalid!.attempts).toBe(1);
    expect(thrown!.error).toBeInstanceOf(UserFunctionError);
    expect(thrown!.attempts).toBe(3);
    expect(thrown!.record.value).toEqual({ sensor: 'x', value: -1, at: 1 });
  });

  it('restores a snapshot into a fresh harness: state carries on as in one run', () => {
    const input = readings(4, 50);
    const totals = new Map<string, number>();
    for (const r of input) totals.set(r.sensor, (totals.get(r.sensor) ?? 0) + r.value);

    const first = transformHarness(runningTotal, {});
    first.send(input.slice(0, 77));
    const state = first.snapshot();
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    const second = transformHarness(runningTotal, {}, { state });
    second.send(input.slice(77));
    const restarted = first.restarted();
    restarted.send(input.slice(77));

    const last = (values: readonly ReadingValue[]) =>
      new Map(values.map((r) => [r.sensor, r.value]));
    expect(last([...first.values, ...second.values])).toEqual(totals);
    expect(last([...first.values, ...restarted.values])).toEqual(totals);
  });

  it('fires event-time windows as the watermark passes them; late records go to the side output', () => {
    const h = transformHarness(windowSum, {}, { sideOutputs: [late] });
    const input = readings(2, 20); // event time 0..39
    for (let i = 0; i < input.length; i += 7) h.send(input.slice(i, i + 7));
    // Watermark = max timestamp - 1 = 38: windows [0,10), [10,20), [20,30) are complete.
    expect(h.watermark).toBe(38);
    const complete = input.filter((r) => r.at < 30);
    expect(windowsOf(h.values)).toEqual(expectedWindows(complete));

    const tooLate = { sensor: 's0', value: 100, at: 5 };
    h.send([tooLate]);
    expect(h.sideOutput(late).map((r) => r.value)).toEqual([tooLate]);

    h.finish(); // end of input: watermark +Infinity fires [30,40)
    expect(windowsOf(h.values)).toEqual(expectedWindows(input));
    expect(() => h.send([tooLate])).toThrow(TransformHarnessError);
  });

  it('keeps each named output apart from the main one, captured side outputs too', () => {
    const warned = outputTag<ReadingValue>('warned');
    const split = defineTransform({
      name: 'split',
      description: 'window sums; late readings and readings over 10 to named outputs',
      configSchema: z.object({}),
      inputTypes: [Reading] as const,
      outputType: Reading,
      outputs: { late: Reading, high: Reading },
      transform: ([readings]) => {
        const sums = readings
          .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0, timestampAssigner: (r) => r.at })
          .process<ReadingValue>({
            processElement(r, ctx, out) {
              if (r.value > 10) ctx.output(warned, r);
              out.collect(r);
            },
          })
          .keyBy((r) => r.sensor)
          .window({ type: 'tumbling', sizeMs: 10 })
          .sideOutputLateData(late)
          .reduce((a, b) => ({ ...b, value: a.value + b.value }));
        return {
          main: sums,
          late: sums.getSideOutput(late),
          high: readings.filter((r) => r.value > 10),
        };
      },
    });
    const h = transformHarness(split, {}, { sideOutputs: [warned] });
    const input = readings(2, 20);
    for (let i = 0; i < input.length; i += 7) h.send(input.slice(i, i + 7));
    const tooLate = { sensor: 's1', value: 1, at: 2 };
    h.send([tooLate]);
    h.finish();
    expect(windowsOf(h.values)).toEqual(expectedWindows(input));
    expect(h.namedOutput('late').map((r) => r.value)).toEqual([tooLate]);
    const high = input.filter((r) => r.value > 10);
    expect(h.namedOutput('high').map((r) => r.value)).toEqual(high);
    expect(h.sideOutput(warned).map((r) => r.value)).toEqual(high);
    expect(() => h.namedOutput('lates')).toThrow(/declares "late", "high"/);
  });

  it('a fake processing-time clock lets an idle channel stop holding the watermark back', () => {
    const h = transformHarness(windowSum, { idleTimeoutMs: 1_000 }, { now: 50_000 });
    h.send([{ sensor: 'a', value: 1, at: 3 }], { channel: 'partition-0' });
    h.send([{ sensor: 'a', value: 2, at: 4 }], { channel: 'partition-1' });
    h.advanceTime(500);
    h.send([{ sensor: 'a', value: 4, at: 25 }], { channel: 'partition-0' });
    // partition-1 is at 4: the watermark (min over channels) holds at 3.
    expect(h.watermark).toBe(3);
    expect(h.values).toEqual([]);
    // 999 ms after partition-1's last batch it still counts; at 1000 ms it is idle.
    expect(h.advanceTime(499)).toEqual([]);
    const fired = h.advanceTime(1);
    expect(h.watermark).toBe(24);
    expect(fired.map((r) => r.value)).toEqual([{ sensor: 'a', value: 3, at: 4 }]);
  });

  it('injects watermarks into a stage without its own assigner: event-time timers fire', () => {
    const stage = keyedStage('reminders', {
      processElement(_value, ctx) {
        ctx.timerService.registerEventTimeTimer(ctx.timestamp + 100);
      },
      onTimer(timestamp, ctx, out) {
        out.collect(`${ctx.key} due at ${timestamp}`);
      },
    });
    const h = transformHarness(stage);
    h.send(['a', 'b'], { timestamp: (_v, i) => 10 * i }); // timers at 100 and 110
    expect(h.advanceWatermark(99)).toEqual([]);
    expect(h.advanceWatermark(105).map((r) => r.value)).toEqual(['a due at 100']);
    expect(h.finish().map((r) => r.value)).toEqual(['b due at 110']);
  });

  it('drives processing time: processing-time timers fire and state TTL expires as the fake clock moves', () => {
    const stage = keyedStage('sessions', {
      processElement(_value, ctx) {
        const seen = ctx.listState<number>('seen', { ttl: { ttlMs: 1_000 } });
        seen.add(ctx.timerService.currentProcessingTime());
        ctx.timerService.registerProcessingTimeTimer(
          ctx.timerService.currentProcessingTime() + 500,
        );
      },
      onTimer(timestamp, ctx, out) {
        const seen = ctx.listState<number>('seen', { ttl: { ttlMs: 1_000 } }).get();
        out.collect(`${ctx.key} ${ctx.timeDomain()} at ${timestamp}: ${seen.join(',')}`);
      },
    });
    const h = transformHarness(stage, { now: 10_000 });
    h.send(['a']);
    h.advanceTime(600);
    h.send(['a']); // seen at 10000 and 10600; timers at 10500 (fired) and 11100
    expect(h.values).toEqual(['a processing at 10500: 10000']);
    // At 11100 the first element (written at 10000, ttl 1000) has expired.
    expect(h.advanceTime(500).map((r) => r.value)).toEqual(['a processing at 11100: 10600']);
    // A restart keeps the state, its timestamps and the timers.
    const restarted = h.restarted();
    restarted.send(['a']);
    // Timer at 11600: the restored element of 10600 has expired by then, the one of 11100 not.
    expect(restarted.setTime(11_700).map((r) => r.value)).toEqual(['a processing at 11600: 11100']);
  });

  it('reports misuse clearly', () => {
    const h = transformHarness(scale, {});
    expect(() => h.send([], { input: 1 })).toThrow(/has 1 input\(s\)/);
    expect(() => h.advanceTime(-1)).toThrow(TransformHarnessError);
    expect(() => h.sideOutput(late)).toThrow(/sideOutputs: \[tag\]/);
  });
});
