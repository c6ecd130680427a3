import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileChain } from './chain-harness.js';
import type { DataStream } from './datastream.js';
import type { StreamRecord } from './record.js';
import { outputTag } from './stream-graph.js';

interface Event {
  key: string;
  n: number;
}

/** A stage using every kind of state: running reduce, windows with lateness, keyed timers. */
function everyState(s: DataStream<unknown>): DataStream<unknown> {
  const late = outputTag<Event>('late');
  const events = (s as DataStream<Event>).assignTimestampsAndWatermarks({
    maxOutOfOrdernessMs: 20,
  });
  const totals = events
    .keyBy((e) => e.key)
    .reduce((a, b) => ({ key: a.key, n: a.n + b.n }))
    .map((e) => `total ${e.key} ${e.n}`);
  const windows = events
    .keyBy((e) => e.key)
    .window({ type: 'tumbling', sizeMs: 30 })
    .allowedLateness(10)
    .sideOutputLateData(late)
    .process<string>((key, w, values, out) => {
      out.collect(`window ${key} ${w.start} ${values.map((v) => v.n).join(',')}`);
    });
  const sessions = events
    .keyBy((e) => e.key)
    .window({ type: 'session', gapMs: 15 })
    .reduce((a, b) => ({ key: a.key, n: a.n + b.n }))
    .map((e) => `session ${e.key} ${e.n}`);
  const timers = events
    .keyBy((e) => e.key)
    .process<string>({
      processElement(value, ctx) {
        const seen = ctx.state<number[]>('seen');
        seen.update([...(seen.value() ?? []), value.n]);
        ctx.timerService.registerEventTimeTimer(ctx.timestamp + 25);
      },
      onTimer(t, ctx, out) {
        out.collect(`timer ${ctx.key} ${t} ${JSON.stringify(ctx.state('seen').value())}`);
      },
    });
  return totals.union(
    windows,
    windows.getSideOutput(late).map((e) => `late ${e.key} ${e.n}`),
    sessions,
    timers,
  );
}

const eventArb = fc.record({
  key: fc.constantFrom('a', 'b', 'c'),
  n: fc.integer({ min: 0, max: 99 }),
  timestamp: fc.integer({ min: 0, max: 400 }),
});

function batchesOf(input: StreamRecord[], cuts: number[]): StreamRecord[][] {
  const batches: StreamRecord[][] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    if (cut < from) continue;
    batches.push(input.slice(from, cut));
    from = cut;
  }
  return batches;
}

describe('checkpoints of compiled chains', () => {
  it('snapshot -> JSON -> restore mid-stream -> continue gives the same output as an uninterrupted run', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 150 }),
        fc
          .array(fc.nat({ max: 150 }), { minLength: 1, maxLength: 8 })
          .map((c) => c.sort((a, b) => a - b)),
        fc.nat(),
        (events, cuts, pick) => {
          const input: StreamRecord[] = events.map((e) => ({
            value: { key: e.key, n: e.n },
            timestamp: e.timestamp,
          }));
          const batches = batchesOf(input, cuts);
          const channels = batches.map((_, i) => `p${i % 2}`);

          const whole = compileChain(everyState);
          const expected = batches.flatMap((b, i) => whole.chain.processBatch(0, channels[i]!, b));
          expected.push(...whole.chain.finish());

          const split = pick % (batches.length + 1);
          const first = compileChain(everyState);
          const got = batches
            .slice(0, split)
            .flatMap((b, i) => first.chain.processBatch(0, channels[i]!, b));
          const checkpoint = JSON.parse(JSON.stringify(first.chain.snapshotState()));
          const second = compileChain(everyState);
          second.chain.restoreState(checkpoint);
          got.push(
            ...batches
              .slice(split)
              .flatMap((b, i) => second.chain.processBatch(0, channels[split + i]!, b)),
            ...second.chain.finish(),
          );
          const show = (out: StreamRecord[]) =>
            out.map((r) => `${r.timestamp} ${String(r.value)}`).sort();
          expect(show(got)).toEqual(show(expected));
          expect(whole.deadLetters).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses a checkpoint from a different operator graph, saying what to do', () => {
    const source = compileChain(
      (s) => (s as DataStream<Event>).keyBy((e) => e.key).reduce((a) => a) as DataStream<unknown>,
    );
    source.chain.processBatch(0, 'p', [{ value: { key: 'a', n: 1 }, timestamp: 0 }]);
    const checkpoint = source.chain.snapshotState();
    const other = compileChain(
      (s) =>
        (s as DataStream<Event>)
          .map((e) => e)
          .keyBy((e) => e.key)
          .reduce((a) => a) as DataStream<unknown>,
    );
    expect(() => other.chain.restoreState(checkpoint)).toThrow(
      /changed since the checkpoint was taken/,
    );
    expect(() => other.chain.restoreState({ something: 'else' })).toThrow(
      expect.objectContaining({ code: 'STATE_INCOMPATIBLE' }),
    );
  });

  it('checks the value transform() returns', () => {
    expect(() => compileChain(() => ({}) as DataStream<unknown>)).toThrow(
      /must return a DataStream/,
    );
  });
});
