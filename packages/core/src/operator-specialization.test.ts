import { describe, expect, it } from 'vitest';
import { compileChain, records } from './chain-harness.js';
import type { DataStream } from './datastream.js';
import { freshCopy } from './operator-specialization.js';

function adder(step: number): (x: number) => number {
  return function add(x: number): number {
    return x + step;
  };
}

describe('freshCopy', () => {
  it('returns a separate copy of a self-contained factory that behaves the same', () => {
    const copy = freshCopy(adder);
    expect(copy).not.toBe(adder);
    expect(copy(2)(40)).toBe(adder(2)(40));
  });

  it('gives every operator of the same kind its own code, across chains in one process', () => {
    // Many chains with different functions at the same positions: results stay per chain.
    const chains = Array.from({ length: 20 }, (_, k) =>
      compileChain(
        (s) =>
          (s as DataStream<number>)
            .map((x) => x * k)
            .filter((x) => x % 2 === 0)
            .keyBy(() => 'all')
            .reduce((a, b) => a + b) as DataStream<unknown>,
      ),
    );
    chains.forEach(({ chain }, k) => {
      const out = chain.processBatch(0, 'c', records([1, 2, 3, 4]));
      const kept = [1, 2, 3, 4].map((x) => x * k).filter((x) => x % 2 === 0);
      expect(out.at(-1)?.value ?? 0).toBe(kept.reduce((a, b) => a + b, 0));
    });
  });
});
