import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { compileChain, records, runInBatches } from './chain-harness.js';
import type { DataStream, KeyedProcessFunction } from './datastream.js';
import { DiskStateBackend } from './disk-keyed-map.js';
import { isCodefeedrError } from './errors.js';
import { murmur2Partition } from './murmur2.js';
import type { StreamRecord } from './record.js';
import { outputTag } from './stream-graph.js';

interface Click {
  user: string;
  n: number;
}

const click = (user: string, n: number, timestamp: number): StreamRecord<Click> => ({
  value: { user, n },
  timestamp,
});

describe('keyed reduce and aggregate', () => {
  it('reduce emits the running value per key, keyed by the selector', () => {
    const { chain } = compileChain(
      (s) =>
        (s as DataStream<Click>)
          .keyBy((c) => c.user)
          .reduce((a, b) => ({ user: a.user, n: a.n + b.n })) as DataStream<unknown>,
    );
    const out = chain.processBatch(0, 'c', [click('a', 1, 0), click('b', 5, 1), click('a', 2, 2)]);
    expect(out.map((r) => [r.key, (r.value as Click).n, r.timestamp])).toEqual([
      ['a', 1, 0],
      ['b', 5, 1],
      ['a', 3, 2],
    ]);
  });

  it('aggregate keeps an accumulator per key and emits getResult; a throwing add leaves the state unchanged', () => {
    const { chain, deadLetters } = compileChain(
      (s) =>
        (s as DataStream<Click>)
          .keyBy((c) => c.user)
          .aggregate({
            createAccumulator: () => ({ count: 0, total: 0 }),
            add: (c, acc) => {
              if (c.n < 0) throw new Error('negative');
              return { count: acc.count + 1, total: acc.total + c.n };
            },
            getResult: (acc) => acc.total / acc.count,
          }) as DataStream<unknown>,
    );
    const out = chain.processBatch(0, 'c', [click('a', 2, 0), click('a', -1, 1), click('a', 4, 2)]);
    expect(out.map((r) => r.value)).toEqual([2, 3]);
    expect(deadLetters.map((d) => (d.record.value as Click).n)).toEqual([-1]);
  });

  it('a key selector that throws dead-letters the record', () => {
    const { chain, deadLetters } = compileChain(
      (s) =>
        (s as DataStream<Click | null>)
          .keyBy((c) => c!.user)
          .reduce((a) => a) as DataStream<unknown>,
    );
    const out = chain.processBatch(0, 'c', [click('a', 1, 0), { value: null, timestamp: 1 }]);
    expect(out).toHaveLength(1);
    expect(deadLetters).toHaveLength(1);
    expect((deadLetters[0]!.error as Error).message).toContain('keyBy of keyedReduce #1');
  });
});

describe('keyed process functions', () => {
  const alert = outputTag<string>('alert');
  /** Counts clicks per user; a timer 10 ms after a user's first click emits the count. */
  const counter: KeyedProcessFunction<Click, string> = {
    processElement(value, ctx, out) {
      const count = ctx.state<number>('count');
      if (count.value() === undefined) ctx.timerService.registerEventTimeTimer(ctx.timestamp + 10);
      count.update((count.value() ?? 0) + value.n);
      if (value.n > 100) ctx.output(alert, `${ctx.key} big click`);
      if (value.n === 0) {
        ctx.timerService.deleteEventTimeTimer(ctx.timestamp + 10);
        out.collect(`${ctx.key} cancelled`);
      }
    },
    onTimer(timestamp, ctx, out) {
      const count = ctx.state<number>('count');
      out.collect(`${ctx.key} ${count.value()} at ${timestamp}`);
      count.clear();
    },
  };

  function counterChain() {
    return compileChain((s) => {
      const counted = (s as DataStream<Click>)
        .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
        .keyBy((c) => c.user)
        .process(counter);
      return counted.union(counted.getSideOutput(alert)) as DataStream<unknown>;
    });
  }

  it('keeps ValueState per key and fires event-time timers when the watermark passes them', () => {
    const { chain } = counterChain();
    expect(
      chain.processBatch(0, 'c', [click('a', 1, 0), click('b', 2, 3), click('a', 3, 5)]),
    ).toEqual([]);
    // Watermark 11 - 1 = 10: a's timer (10) fires, b's (13) not yet.
    const fired = chain.processBatch(0, 'c', [click('b', 200, 11)]);
    expect(fired.map((r) => r.value)).toEqual(['b big click', 'a 4 at 10']);
    expect(fired[1]).toMatchObject({ key: 'a', timestamp: 10 });
    // A new click for a starts a new count; end of input fires every remaining timer.
    chain.processBatch(0, 'c', [click('a', 7, 12)]);
    expect(chain.finish().map((r) => r.value)).toEqual(['b 202 at 13', 'a 7 at 22']);
  });

  it('deleteEventTimeTimer cancels a timer', () => {
    const { chain } = counterChain();
    const out = runInBatches(chain, [click('a', 1, 0), click('a', 0, 0)]);
    expect(out.map((r) => r.value)).toEqual(['a cancelled']);
  });

  it('a throwing onTimer is dead-lettered with the timer and later timers still fire', () => {
    const { chain, deadLetters } = compileChain(
      (s) =>
        (s as DataStream<Click>)
          .keyBy((c) => c.user)
          .process<string>({
            processElement(_v, ctx) {
              ctx.timerService.registerEventTimeTimer(ctx.timestamp);
            },
            onTimer(timestamp, ctx, out) {
              if (ctx.key === 'bad') throw new Error('timer failed');
              out.collect(`${ctx.key}@${timestamp}`);
            },
          }) as DataStream<unknown>,
    );
    const out = runInBatches(chain, [click('bad', 1, 1), click('good', 1, 2)]);
    expect(out.map((r) => r.value)).toEqual(['good@2']);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]).toMatchObject({
      inputIndex: -1,
      record: { key: 'bad', value: { timer: 1 } },
    });
  });

  it('without a watermark strategy, timers fire only at end of input', () => {
    const { chain } = compileChain(
      (s) => (s as DataStream<Click>).keyBy((c) => c.user).process(counter) as DataStream<unknown>,
    );
    expect(
      chain.processBatch(
        0,
        'c',
        records([{ user: 'a', n: 1 }], () => 0),
      ),
    ).toEqual([]);
    expect(
      chain.processBatch(
        0,
        'c',
        records([{ user: 'a', n: 1 }], () => 1000),
      ),
    ).toEqual([]);
    expect(chain.finish().map((r) => r.value)).toEqual(['a 2 at 10']);
  });
});

describe('keys', () => {
  // Strings that other values stringify to, or that look like encodings: a scheme that
  // turned non-strings into strings would collide with exactly these.
  const trickyKey = fc.oneof(
    fc.constantFrom(
      '1',
      '-0',
      '0',
      'true',
      'null',
      'undefined',
      '[object Object]',
      '1,2',
      '[1,2]',
      '',
      ' ',
    ),
    fc.string({ maxLength: 4 }),
    fc.string({ unit: 'grapheme', maxLength: 3 }),
  );
  const nonStringKey = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 2 }), fc.integer(), { maxKeys: 2 }),
    fc.bigInt(),
  );
  type Keyed = { k: string; n: number };

  it('string keys: each key has its own state, output keys are the selector strings unchanged (so partitions too), and a checkpoint restores it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ k: trickyKey, n: fc.integer({ min: -50, max: 50 }) }), {
          maxLength: 40,
        }),
        fc.nat(40),
        (input, cutAt) => {
          const build = () =>
            compileChain(
              (s) =>
                (s as DataStream<Keyed>)
                  .keyBy((v) => v.k)
                  .reduce((a, b) => ({ k: a.k, n: a.n + b.n })) as DataStream<unknown>,
            ).chain;
          const cut = Math.min(cutAt, input.length);
          const first = build();
          const out = first.processBatch(0, 'c', records(input.slice(0, cut)));
          const second = build(); // a restarted worker: state only from the checkpoint
          second.restoreState(JSON.parse(JSON.stringify(first.snapshotState())));
          out.push(...second.processBatch(0, 'c', records(input.slice(cut))));
          // Naive running sum per key, in an object keyed by the exact string.
          const totals: Record<string, number> = Object.create(null);
          const expected = input.map((v) => {
            totals[v.k] = (totals[v.k] ?? 0) + v.n;
            return [v.k, totals[v.k]];
          });
          expect(out.map((r) => [r.key, (r.value as Keyed).n])).toEqual(expected);
          for (const [i, r] of out.entries())
            expect(murmur2Partition(r.key!, 7)).toBe(murmur2Partition(input[i]!.k, 7));
        },
      ),
    );
  });

  const keyedStages: Record<
    string,
    (s: DataStream<unknown>, key: (v: unknown) => string) => DataStream<unknown>
  > = {
    reduce: (s, key) => s.keyBy(key).reduce((a) => a),
    aggregate: (s, key) =>
      s.keyBy(key).aggregate({
        createAccumulator: () => 0,
        add: (_v, a: number) => a + 1,
        getResult: (a) => a,
      }),
    process: (s, key) => s.keyBy(key).process({ processElement: (v, _ctx, out) => out.collect(v) }),
    window: (s, key) =>
      s
        .keyBy(key)
        .window({ type: 'tumbling', sizeMs: 10 })
        .process((_k, _w, values, out) => out.collect(values.length)),
    'reduce after a flatMap': (s, key) =>
      s
        .flatMap((v, out) => out.collect(v))
        .keyBy(key)
        .reduce((a) => a),
  };

  for (const [name, build] of Object.entries(keyedStages)) {
    it(`${name}: the first record with a non-string key fails the stage with KEY_NOT_STRING naming the stage and the type; nothing is dead-lettered or merged`, () => {
      fc.assert(
        fc.property(
          fc.array(fc.string({ maxLength: 3 }), { maxLength: 5 }),
          nonStringKey,
          (before, bad) => {
            const { chain, deadLetters } = compileChain(
              (s) => build(s, (v) => (v as { k: string }).k),
              { stageId: 'counts', retries: 2 },
            );
            const input = [...before.map((k) => ({ k })), { k: bad }, { k: 'after' }];
            let thrown: unknown;
            try {
              chain.processBatch(0, 'c', records(input));
            } catch (error) {
              thrown = error;
            }
            expect(isCodefeedrError(thrown) && thrown.code).toBe('KEY_NOT_STRING');
            const error = thrown as Error & { details: Record<string, unknown> };
            const type = bad === null ? 'null' : Array.isArray(bad) ? 'array' : typeof bad;
            expect(error.details).toMatchObject({ stageId: 'counts', keyType: type });
            expect(error.message).toContain('stage "counts"');
            expect(error.message).toContain(type === 'array' ? 'an array' : type);
            expect(error.message).toContain('Return a string');
            expect(deadLetters).toEqual([]);
          },
        ),
        { numRuns: 50 },
      );
    });
  }
});

describe('keyed reduce and aggregate on the disk backend', () => {
  interface Reading {
    k: string;
    n: number;
  }
  const byKey = (s: DataStream<unknown>) => (s as DataStream<Reading>).keyBy((r) => r.k);
  const transforms = {
    reduce: (s: DataStream<unknown>) =>
      byKey(s).reduce((a, b) => ({ k: a.k, n: a.n * 31 + b.n })) as DataStream<unknown>,
    aggregate: (s: DataStream<unknown>) =>
      byKey(s).aggregate({
        createAccumulator: () => ({ count: 0, items: [] as number[] }),
        // Changes the accumulator in place: the operator must store it again.
        add: (r: Reading, acc: { count: number; items: number[] }) => {
          acc.count++;
          acc.items.push(r.n);
          return acc;
        },
        getResult: (acc) => `${acc.count}:${acc.items.join(',')}`,
      }) as DataStream<unknown>,
  };
  /** The naive reference: a fold per key over the records so far. */
  const reference = {
    reduce: (input: readonly Reading[]) => {
      const state = new Map<string, number>();
      return input.map((r) => {
        const prev = state.get(r.k);
        const next = prev === undefined ? r.n : prev * 31 + r.n;
        state.set(r.k, next);
        return { k: r.k, n: next };
      });
    },
    aggregate: (input: readonly Reading[]) => {
      const state = new Map<string, number[]>();
      return input.map((r) => {
        const items = [...(state.get(r.k) ?? []), r.n];
        state.set(r.k, items);
        return `${items.length}:${items.join(',')}`;
      });
    },
  };
  const readings = fc.array(
    fc.record({
      k: fc.integer({ min: 0, max: 25 }).map((i) => `k${i}`),
      n: fc.integer({ min: 0, max: 9 }),
    }),
    { maxLength: 150 },
  );
  const dir = mkdtempSync(join(tmpdir(), 'cf-keyed-ops-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['reduce', 'aggregate'] as const) {
    it(`${kind}: equals the reference over batch splits and restarts, with 4 keys cached of up to 26`, () => {
      fc.assert(
        fc.property(
          readings,
          fc.array(fc.nat(150), { maxLength: 6 }),
          fc.nat(150),
          fc.integer({ min: 1, max: 6 }),
          (input, rawCuts, restartAt, cacheEntries) => {
            const stateBackend = new DiskStateBackend({ dir, cacheEntries });
            const cuts = [...new Set(rawCuts.filter((c) => c <= input.length))].sort(
              (a, b) => a - b,
            );
            const restart = Math.min(restartAt, input.length);
            const recs = records(input);
            const first = compileChain(transforms[kind], { stateBackend });
            const out = runBatches(first.chain, recs.slice(0, restart), cuts);
            const snapshot = first.chain.snapshotState();
            first.chain.close!();
            // A restart: a new chain (a new file) restored from the checkpoint.
            const second = compileChain(transforms[kind], { stateBackend });
            second.chain.restoreState(snapshot);
            out.push(
              ...runBatches(
                second.chain,
                recs.slice(restart),
                cuts.map((c) => c - restart),
              ),
            );
            // The checkpoint is the memory backend's, key for key (order aside).
            const memory = compileChain(transforms[kind]);
            runBatches(memory.chain, recs, cuts);
            const sorted = (s: unknown) =>
              JSON.stringify(s, (_k, v: unknown) =>
                Array.isArray(v) && v.every((e) => Array.isArray(e) && typeof e[0] === 'string')
                  ? [...(v as [string][])].sort(([a], [b]) => (a < b ? -1 : 1))
                  : v,
              );
            expect(sorted(second.chain.snapshotState())).toBe(sorted(memory.chain.snapshotState()));
            second.chain.close!();
            expect(out.map((r) => r.value)).toEqual(reference[kind](input));
            expect(out.map((r) => r.key)).toEqual(input.map((r) => r.k));
            expect(readdirSync(dir)).toEqual([]);
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  function runBatches(
    chain: ReturnType<typeof compileChain>['chain'],
    input: readonly StreamRecord[],
    cuts: readonly number[],
  ): StreamRecord[] {
    const out: StreamRecord[] = [];
    let from = 0;
    for (const cut of [...cuts.filter((c) => c > 0 && c < input.length), input.length]) {
      if (cut <= from) continue;
      out.push(...chain.processBatch(0, 'c0', input.slice(from, cut)));
      from = cut;
    }
    return out;
  }
});
