import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileChain, records, runInBatches } from './chain-harness.js';
import type { DataStream, ProcessFunction } from './datastream.js';
import { defineMessageType, z } from './index.js';
import type { StreamRecord } from './record.js';
import { SOURCE_ERROR_HEADER } from './reserved-headers.js';
import { badSourceRecord } from './source-record-error.js';
import { outputTag } from './stream-graph.js';

type Op =
  | { t: 'map'; a: number; b: number }
  | { t: 'filter'; m: number }
  | { t: 'flatMap'; k: number }
  | { t: 'reduce'; m: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    t: fc.constant('map' as const),
    a: fc.integer({ min: 1, max: 7 }),
    b: fc.integer({ min: 0, max: 9 }),
  }),
  fc.record({ t: fc.constant('filter' as const), m: fc.integer({ min: 2, max: 5 }) }),
  fc.record({ t: fc.constant('flatMap' as const), k: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ t: fc.constant('reduce' as const), m: fc.integer({ min: 1, max: 6 }) }),
);

/** The fused chain for a list of ops. */
function build(ops: readonly Op[], source: DataStream<unknown>): DataStream<unknown> {
  let s = source as DataStream<number>;
  for (const op of ops) {
    if (op.t === 'map') s = s.map((x) => (x * op.a + op.b) % 1000);
    else if (op.t === 'filter') s = s.filter((x) => x % op.m !== 0);
    else if (op.t === 'flatMap')
      s = s.flatMap<number>((x, out) => {
        out.collect(x);
        if (x % op.k === 0) out.collect(x + 1);
      });
    else s = s.keyBy((x) => String(x % op.m)).reduce((a, b) => (a + b) % 100_000);
  }
  return s as DataStream<unknown>;
}

interface Row {
  key: string | undefined;
  value: number;
  timestamp: number;
}

/** The same ops, computed naively over whole arrays. */
function reference(ops: readonly Op[], input: readonly number[]): Row[] {
  let rows: Row[] = input.map((value, i) => ({ key: undefined, value, timestamp: i }));
  for (const op of ops) {
    if (op.t === 'map') rows = rows.map((r) => ({ ...r, value: (r.value * op.a + op.b) % 1000 }));
    else if (op.t === 'filter') rows = rows.filter((r) => r.value % op.m !== 0);
    else if (op.t === 'flatMap')
      rows = rows.flatMap((r) => (r.value % op.k === 0 ? [r, { ...r, value: r.value + 1 }] : [r]));
    else {
      const sums = new Map<string, number>();
      rows = rows.map((r) => {
        const key = String(r.value % op.m);
        const sum = sums.has(key) ? (sums.get(key)! + r.value) % 100_000 : r.value;
        sums.set(key, sum);
        return { key, value: sum, timestamp: r.timestamp };
      });
    }
  }
  return rows;
}

const rows = (out: StreamRecord[]): Row[] =>
  out.map((r) => ({ key: r.key, value: r.value as number, timestamp: r.timestamp }));

describe('fused operator chains', () => {
  it('equal a naive reference for random map/filter/flatMap/keyBy-reduce chains and random batch splits', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 999 }), { maxLength: 200 }),
        fc.array(fc.nat({ max: 200 }), { maxLength: 10 }),
        (ops, values, cuts) => {
          const { chain, deadLetters } = compileChain((s) => build(ops, s));
          const out = runInBatches(
            chain,
            records(values),
            [...cuts].sort((a, b) => a - b),
          );
          expect(deadLetters).toEqual([]);
          expect(rows(out)).toEqual(reference(ops, values));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('returns input records themselves when only filters run, and copies of reused records otherwise', () => {
    const input = records([1, 2, 3, 4]);
    const filtered = compileChain(
      (s) => (s as DataStream<number>).filter((x) => x % 2 === 0) as DataStream<unknown>,
    );
    const out = filtered.chain.processBatch(0, 'c', input);
    expect(out).toEqual([input[1], input[3]]);
    expect(out[0]).toBe(input[1]);

    const mapped = compileChain(
      (s) => (s as DataStream<number>).map((x) => x * 10) as DataStream<unknown>,
    );
    const out2 = mapped.chain.processBatch(0, 'c', input);
    expect(out2.map((r) => r.value)).toEqual([10, 20, 30, 40]);
    // Every output is its own object, even though the map operator reuses one internally.
    expect(new Set(out2).size).toBe(4);
  });

  it('keeps key, timestamp and headers through map and flatMap; collect(value, timestamp) overrides the time', () => {
    const { chain } = compileChain(
      (s) =>
        (s as DataStream<number>)
          .map((x) => x + 1)
          .flatMap<number>((x, out, record) => {
            out.collect(x);
            out.collect(-x, record.timestamp + 1000);
          }) as DataStream<unknown>,
    );
    const out = chain.processBatch(0, 'c', [
      { key: 'k', value: 1, timestamp: 5, headers: { h: 'v' } },
    ]);
    expect(out).toEqual([
      { key: 'k', value: 2, timestamp: 5, headers: { h: 'v' } },
      { key: 'k', value: -2, timestamp: 1005, headers: { h: 'v' } },
    ]);
  });
});

describe('failures in user functions', () => {
  it('retries a throwing call, then dead-letters the input record and carries on with the batch', () => {
    const calls = new Map<number, number>();
    const { chain, deadLetters } = compileChain(
      (s) =>
        (s as DataStream<number>).map((x) => {
          const n = (calls.get(x) ?? 0) + 1;
          calls.set(x, n);
          if (x === 2 && n < 3) throw new Error('flaky');
          if (x === 3) throw new Error(`bad value ${x}`);
          return x * 10;
        }) as DataStream<unknown>,
      { retries: 2, stageId: 'maps' },
    );
    const input = records([1, 2, 3, 4]);
    const out = chain.processBatch(0, 'c', input);
    expect(out.map((r) => r.value)).toEqual([10, 20, 40]);
    expect(calls.get(2)).toBe(3);
    expect(calls.get(3)).toBe(3);
    expect(deadLetters).toHaveLength(1);
    const dead = deadLetters[0]!;
    expect(dead.record).toEqual(input[2]);
    expect(dead.attempts).toBe(3);
    expect(dead.inputIndex).toBe(0);
    expect(dead.error).toMatchObject({ code: 'USER_FUNCTION_FAILED' });
    expect((dead.error as Error).message).toContain(
      'map #1 in stage "maps" threw 3 time(s): bad value 3',
    );
  });

  it('a failure in one branch of a flatMap does not stop its other outputs or sibling branches', () => {
    const { chain, deadLetters } = compileChain((s) => {
      const spread = (s as DataStream<number>).flatMap<number>((x, out) => {
        out.collect(x);
        out.collect(x + 1);
        out.collect(x + 2);
      });
      const strict = spread.map((x) => {
        if (x === 11) throw new Error('eleven');
        return `strict ${x}`;
      });
      const loose = spread.map((x) => `loose ${x}`);
      return strict.union(loose) as DataStream<unknown>;
    });
    const out = chain.processBatch(0, 'c', records([10]));
    expect(out.map((r) => r.value)).toEqual([
      'strict 10',
      'loose 10',
      'loose 11',
      'strict 12',
      'loose 12',
    ]);
    expect(deadLetters.map((d) => d.record.value)).toEqual([10]);
  });

  it('a record that fails validate() goes to dead letters with the schema error, others flow on', () => {
    const type = defineMessageType('test.Point', 1, z.object({ x: z.number() }));
    const { chain, deadLetters } = compileChain(
      (s) => s.validate(type as never) as DataStream<unknown>,
    );
    const out = chain.processBatch(
      0,
      'c',
      records<unknown>([{ x: 1 }, { x: 'no' }, { x: 3, extra: true }]),
    );
    expect(out.map((r) => r.value)).toEqual([{ x: 1 }, { x: 3, extra: true }]);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]!.error).toMatchObject({ code: 'SCHEMA_MISMATCH' });
    expect(deadLetters[0]!.attempts).toBe(1);
  });

  it('records a source flagged as unparseable go to dead letters untouched', () => {
    const { chain, deadLetters } = compileChain((s) => s.map((v) => v) as DataStream<unknown>);
    const bad = badSourceRecord('{not json', 'events.ndjson line 7: Unexpected token', 0);
    const out = chain.processBatch(0, 'c', [
      { value: 1, timestamp: 0 },
      bad,
      { value: 2, timestamp: 0 },
    ]);
    expect(out.map((r) => r.value)).toEqual([1, 2]);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]!.record.value).toBe('{not json');
    expect(deadLetters[0]!.record.headers?.[SOURCE_ERROR_HEADER]).toContain('line 7');
    expect(deadLetters[0]!.error).toMatchObject({ code: 'SOURCE_RECORD_INVALID' });
  });
});

describe('graph shapes', () => {
  it('fans one input out to several branches and unions them back', () => {
    const { chain } = compileChain((s) => {
      const n = s as DataStream<number>;
      return n
        .map((x) => x * 2)
        .union(
          n.filter((x) => x > 1),
          n.map((x) => -x),
        ) as DataStream<unknown>;
    });
    const out = chain.processBatch(0, 'c', records([1, 2]));
    expect(out.map((r) => r.value)).toEqual([2, -1, 4, 2, -2]);
  });

  it('unions several stage inputs, each batch tagged with its input index', () => {
    const { chain } = compileChain(
      (a, b) =>
        (a as DataStream<string>).union(
          b!.map((x) => `b:${String(x)}`) as DataStream<string>,
        ) as DataStream<unknown>,
      { inputs: 2 },
    );
    expect(chain.processBatch(0, 'a', records(['x'])).map((r) => r.value)).toEqual(['x']);
    expect(chain.processBatch(1, 'b', records([7])).map((r) => r.value)).toEqual(['b:7']);
    expect(() => chain.processBatch(2, 'c', [])).toThrow(/has 2 input\(s\)/);
  });

  it('routes ctx.output(tag) to getSideOutput(tag), also when the side output is all that is returned', () => {
    const odd = outputTag<number>('odd');
    const split: ProcessFunction<number, number> = {
      processElement(value, ctx, out) {
        if (value % 2 === 0) out.collect(value);
        else ctx.output(odd, value * 100);
      },
    };
    const both = compileChain((s) => {
      const evens = (s as DataStream<number>).process(split);
      return evens.union(evens.getSideOutput(odd)) as DataStream<unknown>;
    });
    expect(both.chain.processBatch(0, 'c', records([1, 2, 3])).map((r) => r.value)).toEqual([
      100, 2, 300,
    ]);

    const sideOnly = compileChain(
      (s) => (s as DataStream<number>).process(split).getSideOutput(odd) as DataStream<unknown>,
    );
    expect(sideOnly.chain.processBatch(0, 'c', records([1, 2, 3])).map((r) => r.value)).toEqual([
      100, 300,
    ]);
  });

  it('rejects graphs that cannot work, saying what to do', () => {
    const tag = outputTag<number>('x');
    expect(() =>
      compileChain((s) => s.map((v) => v).getSideOutput(tag) as DataStream<unknown>),
    ).toThrow(/only process\(\), keyBy\(\)\.process\(\) and window\(\) streams have side outputs/);
    const other = compileChain((s) => s);
    expect(() =>
      compileChain((s) => {
        let foreign: DataStream<unknown> | undefined;
        compileChain((t) => (foreign = t));
        return s.union(foreign!);
      }),
    ).toThrow(/another stage/);
    expect(other.chain.processBatch(0, 'c', records([1])).map((r) => r.value)).toEqual([1]);
    expect(() => outputTag('')).toThrow(/non-empty/);
  });
});
