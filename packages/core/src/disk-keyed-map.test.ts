import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskStateBackend } from './disk-keyed-map.js';
import { isCodefeedrError } from './errors.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cf-disk-map-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

type Op =
  | { kind: 'set'; key: string; value: number }
  | { kind: 'get'; key: string }
  | { kind: 'has'; key: string }
  | { kind: 'delete'; key: string }
  | { kind: 'mutate'; key: string }
  | { kind: 'clear' }
  | { kind: 'size' }
  | { kind: 'iterate' };

const keyArb = fc.integer({ min: 0, max: 30 }).map((i) => `k${i}`);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('set' as const), key: keyArb, value: fc.integer() }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('has' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('mutate' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'size' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'iterate' as const }) },
);

/** Runs `ops` on a map; values are `{ n }` objects, `mutate` changes one in place and sets it again. */
function run(
  map: {
    get(k: string): { n: number } | undefined;
    has(k: string): boolean;
    set(k: string, v: { n: number }): unknown;
    delete(k: string): boolean;
    clear(): void;
    readonly size: number;
    [Symbol.iterator](): Iterator<[string, { n: number }]>;
  },
  ops: readonly Op[],
): unknown[] {
  return ops.map((op) => {
    switch (op.kind) {
      case 'set':
        map.set(op.key, { n: op.value });
        return null;
      case 'get':
        return map.get(op.key)?.n;
      case 'has':
        return map.has(op.key);
      case 'delete':
        return map.delete(op.key);
      case 'mutate': {
        const v = map.get(op.key);
        if (v === undefined) return undefined;
        v.n += 1;
        map.set(op.key, v);
        return v.n;
      }
      case 'clear':
        map.clear();
        return null;
      case 'size':
        return map.size;
      case 'iterate': {
        // Sorted: the disk map iterates in key order, a Map in insertion order.
        const seen: [string, number][] = [];
        for (const [k, v] of map as Iterable<[string, { n: number }]>) seen.push([k, v.n]);
        return seen.sort(([a], [b]) => (a < b ? -1 : 1));
      }
    }
  });
}

describe('DiskStateBackend maps', () => {
  it('answer every operation as a Map does, whatever the cache size (evictions read back from the file)', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 120 }),
        fc.integer({ min: 1, max: 12 }),
        (ops, cacheEntries) => {
          const backend = new DiskStateBackend({ dir, cacheEntries }).open('s', 'op');
          try {
            const disk = backend.map<{ n: number }>();
            expect(run(disk, ops)).toEqual(run(new Map(), ops));
          } finally {
            backend.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('holds more keys than its cache: 20,000 keys with 100 cached, every value read back', () => {
    const backend = new DiskStateBackend({ dir, cacheEntries: 100 }).open('s', 'op');
    const map = backend.map<number>();
    for (let i = 0; i < 20_000; i++) map.set(`k${i}`, i);
    for (let i = 0; i < 20_000; i += 2) map.set(`k${i}`, (map.get(`k${i}`) ?? 0) * 2);
    for (let i = 0; i < 20_000; i += 3) map.delete(`k${i}`);
    let count = 0;
    let sum = 0;
    for (const [, v] of map) {
      count++;
      sum += v;
    }
    let expectedCount = 0;
    let expectedSum = 0;
    for (let i = 0; i < 20_000; i++) {
      if (i % 3 === 0) continue;
      expectedCount++;
      expectedSum += i % 2 === 0 ? i * 2 : i;
    }
    expect([count, sum]).toEqual([expectedCount, expectedSum]);
    expect(map.size).toBe(expectedCount);
    expect(map.get('k4')).toBe(8);
    expect(map.get('k3')).toBeUndefined();
    backend.close();
  });

  it('allows deletes and sets while iterating, as a Map does', () => {
    const backend = new DiskStateBackend({ dir, cacheEntries: 10 }).open('s', 'op');
    const map = backend.map<number>();
    for (let i = 0; i < 2_500; i++) map.set(`k${String(i).padStart(4, '0')}`, i);
    for (const [k, v] of map) {
      if (v % 2 === 0) map.delete(k);
      else map.set(k, v * 10);
    }
    const left = [...(map as Iterable<[string, number]>)];
    expect(left).toHaveLength(1_250);
    expect(left.every(([k, v]) => v === Number(k.slice(1)) * 10 && v % 20 === 10)).toBe(true);
    backend.close();
  });

  it('keeps the maps of one operator apart, and deletes its file on close', () => {
    const backend = new DiskStateBackend({ dir, cacheEntries: 2 }).open(
      'stage/1',
      'keyedReduce #1',
    );
    const a = backend.map<string>();
    const b = backend.map<string>();
    for (const k of ['x', 'y', 'z']) {
      a.set(k, `a-${k}`);
      b.set(k, `b-${k}`);
    }
    a.clear();
    expect([a.size, b.size, b.get('x')]).toEqual([0, 3, 'b-x']);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^codefeedr-state-stage_1-keyedReduce_1-[0-9a-f]{8}\.sqlite$/);
    backend.close();
    expect(readdirSync(dir)).toEqual([]);
    expect(() => b.get('q')).toThrow(/closed/);
  });

  it('fails with STATE_BACKEND_FAILED when its directory cannot be created', () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    let error: unknown;
    try {
      new DiskStateBackend({ dir: join(file, 'state') }).open('s', 'op');
    } catch (e) {
      error = e;
    }
    expect(isCodefeedrError(error) && error.code).toBe('STATE_BACKEND_FAILED');
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked');
      new DiskStateBackend({ dir: locked }).open('s', 'op').close();
      chmodSync(locked, 0o500);
      expect(() => new DiskStateBackend({ dir: locked }).open('s', 'op')).toThrow(
        expect.objectContaining({ code: 'STATE_BACKEND_FAILED' }),
      );
    }
  });
});
