import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChainUnderTest, compileChain, runInBatches } from './chain-harness.js';
import type { Collector, DataStream, WindowAssigner, WindowedStream } from './datastream.js';
import type { StreamRecord } from './record.js';
import { outputTag } from './stream-graph.js';

interface Event {
  key: string;
  n: number;
}

interface WindowResult {
  key: string;
  start: number;
  end: number;
  sum: number;
  count: number;
}

const byWindow = (a: WindowResult, b: WindowResult) =>
  a.key.localeCompare(b.key) || a.start - b.start || a.end - b.end;

/** Naive windows: every element lands in every window that contains it, computed from scratch. */
function referenceWindows(
  assigner: WindowAssigner,
  input: readonly StreamRecord<Event>[],
): WindowResult[] {
  const windows = new Map<string, WindowResult>();
  const add = (key: string, start: number, end: number, n: number) => {
    const id = `${key}|${start}|${end}`;
    const w = windows.get(id) ?? { key, start, end, sum: 0, count: 0 };
    w.sum += n;
    w.count += 1;
    windows.set(id, w);
  };
  if (assigner.type === 'session') {
    const keys = new Set(input.map((r) => r.value.key));
    for (const key of keys) {
      const sorted = input
        .filter((r) => r.value.key === key)
        .sort((a, b) => a.timestamp - b.timestamp);
      let session: { start: number; end: number; members: number[] } | undefined;
      const close = () => {
        if (session) for (const n of session.members) add(key, session.start, session.end, n);
      };
      for (const r of sorted) {
        if (session && r.timestamp <= session.end) {
          session.end = Math.max(session.end, r.timestamp + assigner.gapMs);
          session.members.push(r.value.n);
        } else {
          close();
          session = { start: r.timestamp, end: r.timestamp + assigner.gapMs, members: [r.value.n] };
        }
      }
      close();
    }
  } else {
    for (const r of input) {
      // Enumerate candidate window starts by brute force over a range that surely covers them.
      const size =
        assigner.type === 'tumbling'
          ? assigner.sizeMs
          : assigner.type === 'sliding'
            ? assigner.sizeMs
            : 0;
      const step = assigner.type === 'sliding' ? assigner.slideMs : size;
      for (
        let start = Math.floor((r.timestamp - size) / step) * step;
        start <= r.timestamp;
        start += step
      ) {
        if (start <= r.timestamp && r.timestamp < start + size)
          add(r.value.key, start, start + size, r.value.n);
      }
    }
  }
  return [...windows.values()].sort(byWindow);
}

function summed(w: WindowedStream<Event>): DataStream<unknown> {
  return w.process<WindowResult>((key, window, values, out) => {
    let sum = 0;
    for (const v of values) sum += v.n;
    out.collect({ key, start: window.start, end: window.end, sum, count: values.length });
  }) as DataStream<unknown>;
}

const assignerArb: fc.Arbitrary<WindowAssigner> = fc.oneof(
  fc.record({ type: fc.constant('tumbling' as const), sizeMs: fc.integer({ min: 1, max: 50 }) }),
  fc
    .tuple(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 5 }))
    .map(([slideMs, factor]) => ({ type: 'sliding' as const, sizeMs: slideMs * factor, slideMs })),
  // Smaller than the slide: gaps between windows.
  fc
    .tuple(fc.integer({ min: 2, max: 10 }), fc.integer({ min: 1, max: 9 }))
    .map(([slideMs, size]) => ({
      type: 'sliding' as const,
      sizeMs: Math.min(size, slideMs - 1),
      slideMs,
    })),
  fc.record({ type: fc.constant('session' as const), gapMs: fc.integer({ min: 1, max: 40 }) }),
);

const eventsArb = fc.array(
  fc.record({
    key: fc.constantFrom('a', 'b', 'c'),
    n: fc.integer({ min: -50, max: 50 }),
    timestamp: fc.integer({ min: -300, max: 300 }),
  }),
  { maxLength: 120 },
);

const cutsArb = fc
  .array(fc.nat({ max: 120 }), { maxLength: 8 })
  .map((c) => c.sort((a, b) => a - b));

const toRecords = (
  events: { key: string; n: number; timestamp: number }[],
): StreamRecord<Event>[] =>
  events.map((e) => ({ value: { key: e.key, n: e.n }, timestamp: e.timestamp }));

/** keyBy → window with in-order watermarks (bound); late records come out as `{ late }`. */
function compileWithLateOutput(assigner: WindowAssigner, bound: number): ChainUnderTest {
  const late = outputTag<Event>('late');
  return compileChain((s) => {
    const windowed = (s as DataStream<Event>)
      .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: bound })
      .keyBy((e) => e.key)
      .window(assigner)
      .sideOutputLateData(late);
    const main = summed(windowed);
    return main.union(main.getSideOutput(late).map((e) => ({ late: e })));
  });
}

const results = (out: StreamRecord[]) => (out.map((r) => r.value) as WindowResult[]).sort(byWindow);

describe('windows against a naive reference', () => {
  it('without watermarks, every window fires at end of input with exactly its elements (random timestamps)', () => {
    fc.assert(
      fc.property(assignerArb, eventsArb, cutsArb, (assigner, events, cuts) => {
        const input = toRecords(events);
        const { chain, deadLetters } = compileChain((s) =>
          summed((s as DataStream<Event>).keyBy((e) => e.key).window(assigner)),
        );
        const out = runInBatches(chain, input, cuts);
        expect(deadLetters).toEqual([]);
        expect(results(out)).toEqual(referenceWindows(assigner, input));
      }),
      { numRuns: 300 },
    );
  });

  it('with in-order watermarks, windows fire as event time passes them and nothing is late (random batch splits)', () => {
    fc.assert(
      fc.property(
        assignerArb,
        eventsArb,
        cutsArb,
        fc.nat({ max: 20 }),
        (assigner, events, cuts, bound) => {
          const input = toRecords(events).sort((a, b) => a.timestamp - b.timestamp);
          const { chain } = compileWithLateOutput(assigner, bound);
          const beforeFinish: StreamRecord[] = [];
          let from = 0;
          for (const cut of [...cuts, input.length]) {
            if (cut < from) continue;
            beforeFinish.push(...chain.processBatch(0, 'p0', input.slice(from, cut)));
            from = cut;
          }
          // Everything that fired before the end lies entirely behind the final watermark.
          const finalWatermark = input.length
            ? input[input.length - 1]!.timestamp - bound - 1
            : -Infinity;
          for (const r of beforeFinish) {
            expect((r.value as WindowResult).end - 1).toBeLessThanOrEqual(finalWatermark);
            expect(r.timestamp).toBe((r.value as WindowResult).end - 1);
          }
          const all = [...beforeFinish, ...chain.finish()];
          expect(results(all)).toEqual(referenceWindows(assigner, input));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reduce and aggregate give the same sums as process (incremental aggregation)', () => {
    fc.assert(
      fc.property(assignerArb, eventsArb, (assigner, events) => {
        const input = toRecords(events);
        const expected = referenceWindows(assigner, input)
          .map((w) => `${w.key}:${w.end - 1}:${w.sum}`)
          .sort();
        const reduced = compileChain(
          (s) =>
            (s as DataStream<Event>)
              .keyBy((e) => e.key)
              .window(assigner)
              .reduce((a, b) => ({ key: a.key, n: a.n + b.n })) as DataStream<unknown>,
        );
        const viaReduce = runInBatches(reduced.chain, input).map(
          (r) => `${r.key}:${r.timestamp}:${(r.value as Event).n}`,
        );
        expect(viaReduce.sort()).toEqual(expected);
        const aggregated = compileChain(
          (s) =>
            (s as DataStream<Event>)
              .keyBy((e) => e.key)
              .window(assigner)
              .aggregate({
                createAccumulator: () => ({ sum: 0 }),
                add: (e, acc) => ({ sum: acc.sum + e.n }),
                getResult: (acc) => acc.sum,
                merge: (a, b) => ({ sum: a.sum + b.sum }),
              }) as DataStream<unknown>,
        );
        const viaAggregate = runInBatches(aggregated.chain, input).map(
          (r) => `${r.key}:${r.timestamp}:${String(r.value)}`,
        );
        expect(viaAggregate.sort()).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });
});

describe('window functions on incremental aggregation', () => {
  it('reduce(fn, windowFunction) and aggregate(fn, windowFunction) see each window’s key, bounds and result (naive reference, random batch splits)', () => {
    fc.assert(
      fc.property(assignerArb, eventsArb, cutsArb, (assigner, events, cuts) => {
        const input = toRecords(events);
        const expected = referenceWindows(assigner, input);
        const reduced = compileChain(
          (s) =>
            (s as DataStream<Event & { c?: number }>)
              .keyBy((e) => e.key)
              .window(assigner)
              .reduce(
                // Counts both sides: merging sessions reduces two partial results (as Flink's
                // merging ReducingState does), so `b` may stand for several elements.
                (a, b) => ({ key: a.key, n: a.n + b.n, c: (a.c ?? 1) + (b.c ?? 1) }),
                (key, window, sum, out: Collector<WindowResult>) =>
                  out.collect({ key, ...window, sum: sum.n, count: sum.c ?? 1 }),
              ) as DataStream<unknown>,
        );
        const viaReduce = runInBatches(reduced.chain, input, cuts);
        expect(results(viaReduce)).toEqual(expected);
        // Results carry the window's key and its last timestamp, as emitted records do.
        for (const r of viaReduce) {
          expect(r.key).toBe((r.value as WindowResult).key);
          expect(r.timestamp).toBe((r.value as WindowResult).end - 1);
        }
        const aggregated = compileChain(
          (s) =>
            (s as DataStream<Event>)
              .keyBy((e) => e.key)
              .window(assigner)
              .aggregate(
                {
                  createAccumulator: () => ({ sum: 0, count: 0 }),
                  add: (e, acc) => ({ sum: acc.sum + e.n, count: acc.count + 1 }),
                  getResult: (acc) => acc,
                  merge: (a, b) => ({ sum: a.sum + b.sum, count: a.count + b.count }),
                },
                (key, window, acc, out: Collector<WindowResult>) =>
                  out.collect({ key, ...window, ...acc }),
              ) as DataStream<unknown>,
        );
        expect(results(runInBatches(aggregated.chain, input, cuts))).toEqual(expected);
        const all = compileChain(
          (s) =>
            (s as DataStream<Event>).windowAll(assigner).aggregate(
              {
                createAccumulator: () => ({ sum: 0, count: 0 }),
                add: (e, acc) => ({ sum: acc.sum + e.n, count: acc.count + 1 }),
                getResult: (acc) => acc,
                merge: (a, b) => ({ sum: a.sum + b.sum, count: a.count + b.count }),
              },
              (window, acc, out: Collector<WindowResult>) =>
                out.collect({ key: '*', ...window, ...acc }),
            ) as DataStream<unknown>,
        );
        const allInput = input.map((r) => ({ ...r, value: { ...r.value, key: '*' } }));
        const viaAll = runInBatches(all.chain, allInput, cuts);
        expect(results(viaAll)).toEqual(referenceWindows(assigner, allInput));
        for (const r of viaAll) expect(r.key).toBeUndefined();
      }),
      { numRuns: 150 },
    );
  });
});

/**
 * Naive simulation of Flink's event-time windows with a bounded-out-of-orderness watermark
 * (emitted after each batch), allowed lateness and a late side output.
 */
function simulateLateness(
  assigner:
    | { type: 'tumbling'; sizeMs: number }
    | { type: 'sliding'; sizeMs: number; slideMs: number }
    | { type: 'session'; gapMs: number },
  batches: StreamRecord<Event>[][],
  bound: number,
  lateness: number,
): string[] {
  interface W {
    key: string;
    start: number;
    end: number;
    sum: number;
    count: number;
    timerFired: boolean;
  }
  const windows = new Map<string, W>();
  const out: string[] = [];
  const show = (w: W) => `window ${w.key} ${w.start} ${w.end} ${w.sum} ${w.count}`;
  const size = assigner.type === 'session' ? 0 : assigner.sizeMs;
  const slide = assigner.type === 'sliding' ? assigner.slideMs : size;
  let watermark = -Infinity;
  let maxTs = -Infinity;
  const advance = (to: number) => {
    if (to <= watermark) return;
    watermark = to;
    for (const [id, w] of [...windows].sort((a, b) => a[1].end - b[1].end)) {
      if (!w.timerFired && w.end - 1 <= watermark) {
        w.timerFired = true;
        out.push(show(w));
      }
      if (w.end - 1 + lateness <= watermark) windows.delete(id);
    }
  };
  for (const batch of batches) {
    for (const r of batch) {
      if (assigner.type === 'session') {
        // Merge with every session of the key the new one touches; late if the result is.
        const { key, n } = r.value;
        const touching = [...windows].filter(
          ([, w]) =>
            w.key === key && w.start <= r.timestamp + assigner.gapMs && w.end >= r.timestamp,
        );
        const start = Math.min(r.timestamp, ...touching.map(([, w]) => w.start));
        const end = Math.max(r.timestamp + assigner.gapMs, ...touching.map(([, w]) => w.end));
        if (end - 1 + lateness <= watermark) {
          out.push(`late ${key} ${n} ${r.timestamp}`);
        } else {
          for (const [id] of touching) windows.delete(id);
          const w: W = {
            key,
            start,
            end,
            sum: touching.reduce((a, [, t]) => a + t.sum, n),
            count: touching.reduce((a, [, t]) => a + t.count, 1),
            timerFired: end - 1 <= watermark,
          };
          windows.set(`${key}|${start}`, w);
          if (end - 1 <= watermark) out.push(show(w));
        }
        maxTs = Math.max(maxTs, r.timestamp);
        continue;
      }
      let handled = false;
      for (
        let start = Math.floor((r.timestamp - size) / slide) * slide;
        start <= r.timestamp;
        start += slide
      ) {
        const end = start + size;
        if (!(start <= r.timestamp && r.timestamp < end)) continue;
        if (end - 1 + lateness <= watermark) continue;
        handled = true;
        const id = `${r.value.key}|${start}`;
        let w = windows.get(id);
        if (!w) {
          w = { key: r.value.key, start, end, sum: 0, count: 0, timerFired: end - 1 <= watermark };
          windows.set(id, w);
        }
        w.sum += r.value.n;
        w.count++;
        if (end - 1 <= watermark) out.push(show(w));
      }
      // In no window: late only if the record itself is (Flink's isElementLate); else dropped.
      if (!handled && r.timestamp + lateness <= watermark)
        out.push(`late ${r.value.key} ${r.value.n} ${r.timestamp}`);
      maxTs = Math.max(maxTs, r.timestamp);
    }
    advance(maxTs - bound - 1);
  }
  advance(Infinity);
  return out.sort();
}

describe('windows with late data against a naive simulation', () => {
  it('out-of-order records, random bound, allowed lateness and batch splits give the same firings and late records', () => {
    const assigners = fc.oneof(
      fc.record({
        type: fc.constant('tumbling' as const),
        sizeMs: fc.integer({ min: 1, max: 12 }),
      }),
      fc
        .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }))
        .map(([slideMs, f]) => ({ type: 'sliding' as const, sizeMs: slideMs * f, slideMs })),
      fc
        .tuple(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 7 }))
        .map(([slideMs, size]) => ({
          type: 'sliding' as const,
          sizeMs: Math.min(size, slideMs - 1),
          slideMs,
        })),
      fc.record({ type: fc.constant('session' as const), gapMs: fc.integer({ min: 1, max: 10 }) }),
    );
    // A narrow time range makes watermarks land exactly on window ends often (the edge cases).
    const denseEvents = fc.array(
      fc.record({
        key: fc.constantFrom('a', 'b'),
        n: fc.integer({ min: -50, max: 50 }),
        timestamp: fc.integer({ min: 0, max: 60 }),
      }),
      { maxLength: 100 },
    );
    fc.assert(
      fc.property(
        assigners,
        denseEvents,
        cutsArb,
        fc.nat({ max: 6 }),
        fc.nat({ max: 12 }),
        (assigner, events, cuts, bound, lateness) => {
          const input = toRecords(events);
          const batches: StreamRecord<Event>[][] = [];
          let from = 0;
          for (const cut of [...cuts, input.length]) {
            if (cut < from) continue;
            batches.push(input.slice(from, cut));
            from = cut;
          }
          const late = outputTag<Event>('late');
          const { chain } = compileChain((s) => {
            const windowed = (s as DataStream<Event>)
              .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: bound })
              .keyBy((e) => e.key)
              .window(assigner)
              .allowedLateness(lateness)
              .sideOutputLateData(late);
            const main = windowed.process<string>((key, w, values, out) => {
              out.collect(
                `window ${key} ${w.start} ${w.end} ${values.reduce((a, v) => a + v.n, 0)} ${values.length}`,
              );
            });
            return main.union(
              main.getSideOutput(late).process<string>({
                processElement(e, ctx, out) {
                  out.collect(`late ${e.key} ${e.n} ${ctx.timestamp}`);
                },
              }),
            );
          });
          const got = [
            ...batches.flatMap((b) => chain.processBatch(0, 'p0', b)),
            ...chain.finish(),
          ].map((r) => String(r.value));
          expect(got.sort()).toEqual(simulateLateness(assigner, batches, bound, lateness));
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('window triggers and lateness', () => {
  const ev = (key: string, n: number, timestamp: number): StreamRecord<Event> => ({
    value: { key, n },
    timestamp,
  });

  function lateChain(allowedLatenessMs: number) {
    const late = outputTag<Event>('late');
    return compileChain((s) => {
      const sums = (s as DataStream<Event>)
        .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
        .keyBy((e) => e.key)
        .window({ type: 'tumbling', sizeMs: 10 })
        .allowedLateness(allowedLatenessMs)
        .sideOutputLateData(late)
        .reduce((a, b) => ({ key: a.key, n: a.n + b.n }));
      return sums
        .map((e) => `sum ${e.n}`)
        .union(sums.getSideOutput(late).map((e) => `late ${e.n}`)) as DataStream<unknown>;
    });
  }

  it('sends records behind the watermark to the late side output', () => {
    const { chain } = lateChain(0);
    // Watermark after the first batch: 15 - 0 - 1 = 14, past window [0, 10).
    expect(chain.processBatch(0, 'p', [ev('a', 1, 5), ev('a', 2, 15)]).map((r) => r.value)).toEqual(
      ['sum 1'],
    );
    expect(chain.processBatch(0, 'p', [ev('a', 4, 3)]).map((r) => r.value)).toEqual(['late 4']);
    expect(chain.finish().map((r) => r.value)).toEqual(['sum 2']);
  });

  it('sliding windows smaller than their slide: a record between windows is dropped, and late only when timestamp + allowed lateness <= watermark (Flink)', () => {
    const late = outputTag<Event>('late');
    const { chain } = compileChain((s) => {
      // Windows [0,5), [10,15), [20,25), ...: [5,10) and [15,20) belong to none.
      const sums = (s as DataStream<Event>)
        .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
        .keyBy((e) => e.key)
        .window({ type: 'sliding', sizeMs: 5, slideMs: 10 })
        .allowedLateness(2)
        .sideOutputLateData(late)
        .reduce((a, b) => ({ key: a.key, n: a.n + b.n }));
      return sums
        .map((e) => `sum ${e.n}`)
        .union(sums.getSideOutput(late).map((e) => `late ${e.n}`)) as DataStream<unknown>;
    });
    const values = (out: StreamRecord[]) => out.map((r) => r.value);
    // 7 falls between windows with the watermark at -inf: dropped, not late. Watermark 13.
    expect(
      values(chain.processBatch(0, 'p', [ev('a', 1, 2), ev('a', 2, 7), ev('a', 4, 14)])),
    ).toEqual(['sum 1']);
    // 17 is between windows and ahead of the watermark: dropped. 11 + 2 <= 13, but its window
    // [10,15) is not late (14 + 2 > 13): it counts, and watermark 16 fires that window.
    expect(values(chain.processBatch(0, 'p', [ev('a', 8, 17), ev('a', 16, 11)]))).toEqual([
      'sum 20',
    ]);
    // 9 is between windows and 9 + 2 <= 16: late. 3's window [0,5) is gone (4 + 2 <= 16): late.
    // 18 is between windows, ahead of the watermark: dropped.
    expect(
      values(chain.processBatch(0, 'p', [ev('a', 32, 9), ev('a', 64, 3), ev('a', 128, 18)])),
    ).toEqual(['late 32', 'late 64']);
    expect(values(chain.finish())).toEqual([]);
  });

  it('within allowed lateness, a late record fires its window again with the new contents', () => {
    const { chain } = lateChain(10);
    expect(chain.processBatch(0, 'p', [ev('a', 1, 5), ev('a', 2, 15)]).map((r) => r.value)).toEqual(
      ['sum 1'],
    );
    expect(chain.processBatch(0, 'p', [ev('a', 4, 3)]).map((r) => r.value)).toEqual(['sum 5']);
    // Watermark 29: window [10,20) fires; [0,10) is cleaned up at 9 + 10 = 19, so 7 is late now.
    expect(chain.processBatch(0, 'p', [ev('a', 8, 30)]).map((r) => r.value)).toEqual(['sum 2']);
    expect(chain.processBatch(0, 'p', [ev('a', 16, 7)]).map((r) => r.value)).toEqual(['late 16']);
  });

  it('countTrigger fires and purges every n elements per key; an unfinished count is dropped (Flink countWindow)', () => {
    const { chain } = compileChain(
      (s) =>
        (s as DataStream<Event>)
          .keyBy((e) => e.key)
          .window({ type: 'global' })
          .countTrigger(3)
          .reduce((a, b) => ({ key: a.key, n: a.n + b.n }))
          .map((e) => `${e.key}=${e.n}`) as DataStream<unknown>,
    );
    const input = [1, 2, 3, 4, 5, 6, 7].map((n, i) => ev(n % 2 ? 'odd' : 'even', n, i));
    const out = runInBatches(chain, input, [2, 5]).map((r) => r.value);
    expect(out).toEqual(['odd=9', 'even=12']);
  });

  it('a global window fires once at end of input with the newest element timestamp', () => {
    const { chain } = compileChain(
      (s) =>
        (s as DataStream<Event>)
          .keyBy((e) => e.key)
          .window({ type: 'global' })
          .aggregate({
            createAccumulator: () => 0,
            add: (e, acc: number) => acc + e.n,
            getResult: (acc) => acc,
          }) as DataStream<unknown>,
    );
    expect(chain.processBatch(0, 'p', [ev('a', 1, 50), ev('a', 2, 20), ev('b', 5, 7)])).toEqual([]);
    const out = chain.finish().sort((x, y) => String(x.key).localeCompare(String(y.key)));
    expect(out).toEqual([
      { key: 'a', value: 3, timestamp: 50, headers: undefined },
      { key: 'b', value: 5, timestamp: 7, headers: undefined },
    ]);
  });

  it('a record bridging two sessions merges them into one', () => {
    const { chain } = compileChain((s) =>
      summed((s as DataStream<Event>).keyBy((e) => e.key).window({ type: 'session', gapMs: 10 })),
    );
    chain.processBatch(0, 'p', [ev('a', 1, 0), ev('a', 2, 18)]);
    chain.processBatch(0, 'p', [ev('a', 4, 9)]);
    expect(chain.finish().map((r) => r.value)).toEqual([
      { key: 'a', start: 0, end: 28, sum: 7, count: 3 },
    ]);
  });

  it('a session that already fired and then grows (within allowed lateness) fires again at its new end', () => {
    const { chain } = compileChain((s) =>
      summed(
        (s as DataStream<Event>)
          .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
          .keyBy((e) => e.key)
          .window({ type: 'session', gapMs: 10 })
          .allowedLateness(5),
      ),
    );
    // Watermark 9 fires a's session [0, 10); its state stays until 9 + 5.
    expect(chain.processBatch(0, 'p', [ev('a', 1, 0), ev('b', 0, 10)]).map((r) => r.value)).toEqual(
      [{ key: 'a', start: 0, end: 10, sum: 1, count: 1 }],
    );
    // 9 touches it and stretches it to [0, 19): due again when event time passes 18.
    expect(chain.processBatch(0, 'p', [ev('a', 2, 9)])).toEqual([]);
    expect(chain.processBatch(0, 'p', [ev('b', 0, 30)]).map((r) => r.value)).toEqual([
      { key: 'a', start: 0, end: 19, sum: 3, count: 2 },
      { key: 'b', start: 10, end: 20, sum: 0, count: 1 },
    ]);
  });

  it('a window function that throws dead-letters the window contents and later windows still fire', () => {
    const { chain, deadLetters } = compileChain(
      (s) =>
        (s as DataStream<Event>)
          .keyBy((e) => e.key)
          .window({ type: 'tumbling', sizeMs: 10 })
          .process<string>((key, window, values, out) => {
            if (window.start === 0) throw new Error('boom');
            out.collect(`${key}@${window.start}:${values.length}`);
          }) as DataStream<unknown>,
    );
    expect(runInBatches(chain, [ev('a', 1, 1), ev('a', 2, 11)]).map((r) => r.value)).toEqual([
      'a@10:1',
    ]);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]!.inputIndex).toBe(-1);
    expect(deadLetters[0]!.record).toMatchObject({
      key: 'a',
      value: { window: { start: 0, end: 10 }, contents: [{ key: 'a', n: 1 }] },
    });
  });

  it('rejects invalid window settings with a clear message', () => {
    expect(() =>
      compileChain((s) =>
        summed(
          (s as DataStream<Event>).keyBy((e) => e.key).window({ type: 'tumbling', sizeMs: 0 }),
        ),
      ),
    ).toThrow(/Invalid window assigner/);
    expect(() =>
      compileChain(
        (s) =>
          (s as DataStream<Event>)
            .keyBy((e) => e.key)
            .window({ type: 'session', gapMs: 5 })
            .aggregate({
              createAccumulator: () => 0,
              add: (e, a: number) => a + e.n,
              getResult: (a) => a,
            }) as DataStream<unknown>,
      ),
    ).toThrow(/merge\(a, b\)/);
  });
});

/**
 * Naive windows with an offset: every window is [offset + j·step, offset + j·step + size) for
 * some integer j (step = size for tumbling); an element belongs to each that contains it.
 * Brute force over j, independent of the operator's modulo arithmetic.
 */
function referenceOffsetWindows(
  size: number,
  step: number,
  offset: number,
  input: readonly StreamRecord<Event>[],
  keyOf: (e: Event) => string,
): WindowResult[] {
  const windows = new Map<string, WindowResult>();
  for (const r of input) {
    const key = keyOf(r.value);
    for (let j = Math.floor((r.timestamp - size - offset) / step) - 1; ; j++) {
      const start = offset + j * step;
      if (start > r.timestamp) break;
      if (r.timestamp >= start + size) continue;
      const id = `${key}|${start}`;
      const w = windows.get(id) ?? { key, start, end: start + size, sum: 0, count: 0 };
      w.sum += r.value.n;
      w.count += 1;
      windows.set(id, w);
    }
  }
  return [...windows.values()].sort(byWindow);
}

/** A tumbling or sliding assigner with an offset in Flink's range (|offset| < slide). */
const offsetAssignerArb = fc
  .tuple(
    fc.boolean(),
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 30 }),
    fc.double({ min: -0.999, max: 0.999, noNaN: true }),
  )
  .map(([tumbling, step, size, fraction]) => {
    const offsetMs = Math.trunc(fraction * step);
    const assigner: WindowAssigner = tumbling
      ? { type: 'tumbling', sizeMs: step, offsetMs }
      : { type: 'sliding', sizeMs: size, slideMs: step, offsetMs };
    return { assigner, size: tumbling ? step : size, step, offsetMs };
  });

describe('window offsets and windowAll against naive references', () => {
  it('tumbling and sliding windows with an offset hold exactly the elements of [offset + j·slide, … + size), with in-order watermarks and random batch splits', () => {
    fc.assert(
      fc.property(
        offsetAssignerArb,
        eventsArb,
        cutsArb,
        fc.nat({ max: 20 }),
        (a, events, cuts, bound) => {
          const input = toRecords(events).sort((x, y) => x.timestamp - y.timestamp);
          const { chain, deadLetters } = compileWithLateOutput(a.assigner, bound);
          const out = runInBatches(chain, input, cuts);
          expect(deadLetters).toEqual([]);
          for (const r of out) expect(r.timestamp).toBe((r.value as WindowResult).end - 1);
          expect(results(out)).toEqual(
            referenceOffsetWindows(a.size, a.step, a.offsetMs, input, (e) => e.key),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('windowAll puts every record in one window per pane, whatever its key, and emits results without a key (process, reduce, aggregate)', () => {
    fc.assert(
      fc.property(offsetAssignerArb, eventsArb, cutsArb, (a, events, cuts) => {
        // Records arrive with assorted record keys too: windowAll ignores both.
        const input = toRecords(events).map((r, i) => ({ ...r, key: `rk${i % 3}` }));
        const expected = referenceOffsetWindows(a.size, a.step, a.offsetMs, input, () => '');
        const viaProcess = compileChain(
          (s) =>
            (s as DataStream<Event>)
              .windowAll(a.assigner)
              .process<WindowResult>((window, values, out) => {
                let sum = 0;
                for (const v of values) sum += v.n;
                out.collect({
                  key: '',
                  start: window.start,
                  end: window.end,
                  sum,
                  count: values.length,
                });
              }) as DataStream<unknown>,
        );
        const processed = runInBatches(viaProcess.chain, input, cuts);
        expect(processed.map((r) => r.key)).toEqual(processed.map(() => undefined));
        expect(results(processed)).toEqual(expected);

        const ends = expected.map((w) => `${w.end - 1}:${w.sum}`).sort();
        const viaReduce = compileChain(
          (s) =>
            (s as DataStream<Event>)
              .windowAll(a.assigner)
              .reduce((x, y) => ({ key: x.key, n: x.n + y.n })) as DataStream<unknown>,
        );
        const reduced = runInBatches(viaReduce.chain, input, cuts);
        expect(reduced.map((r) => r.key)).toEqual(reduced.map(() => undefined));
        expect(reduced.map((r) => `${r.timestamp}:${(r.value as Event).n}`).sort()).toEqual(ends);

        const viaAggregate = compileChain(
          (s) =>
            (s as DataStream<Event>).windowAll(a.assigner).aggregate({
              createAccumulator: () => 0,
              add: (e, acc: number) => acc + e.n,
              getResult: (acc) => acc,
            }) as DataStream<unknown>,
        );
        const aggregated = runInBatches(viaAggregate.chain, input, cuts);
        expect(aggregated.map((r) => `${r.timestamp}:${r.value as number}`).sort()).toEqual(ends);
      }),
      { numRuns: 200 },
    );
  });

  it('windowAll keeps lateness, late side output and count triggers of the keyed path', () => {
    const late = outputTag<Event>('late');
    const { chain } = compileChain((s) => {
      const main = (s as DataStream<Event>)
        .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
        .windowAll({ type: 'tumbling', sizeMs: 10 })
        .sideOutputLateData(late)
        .process<unknown>((_w, values, out) => out.collect(values.length));
      return main.union(main.getSideOutput(late).map((e) => ({ late: e.n })));
    });
    const ev = (key: string, n: number, timestamp: number) => ({ value: { key, n }, timestamp });
    const out = runInBatches(
      chain,
      [ev('a', 1, 1), ev('b', 2, 5), ev('c', 3, 12), ev('a', 4, 3)],
      [3],
    );
    expect(out.map((r) => r.value)).toEqual([2, { late: 4 }, 1]);

    const counted = compileChain(
      (s) =>
        (s as DataStream<Event>)
          .windowAll({ type: 'global' })
          .countTrigger(2)
          .process<number>((_w, values, out) => out.collect(values.length)) as DataStream<unknown>,
    );
    const five = [1, 2, 3, 4, 5].map((n) => ev(String(n), n, n));
    expect(runInBatches(counted.chain, five).map((r) => r.value)).toEqual([2, 2]);
  });

  it("rejects offsets outside Flink's range and non-numbers, naming the fix", () => {
    const bad: WindowAssigner[] = [
      { type: 'tumbling', sizeMs: 10, offsetMs: 10 },
      { type: 'tumbling', sizeMs: 10, offsetMs: -11 },
      { type: 'sliding', sizeMs: 30, slideMs: 10, offsetMs: 10 },
      { type: 'sliding', sizeMs: 30, slideMs: 10, offsetMs: Number.NaN },
      { type: 'sliding', sizeMs: 30, slideMs: 10, offsetMs: '5' as unknown as number },
    ];
    for (const assigner of bad) {
      expect(() =>
        compileChain((s) => summed((s as DataStream<Event>).keyBy((e) => e.key).window(assigner))),
      ).toThrow(/\|offsetMs\| < sizeMs or slideMs/);
      expect(() =>
        compileChain(
          (s) =>
            (s as DataStream<Event>).windowAll(assigner).reduce((x) => x) as DataStream<unknown>,
        ),
      ).toThrow(/Invalid window assigner/);
    }
  });
});
