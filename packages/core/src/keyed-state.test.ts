// Keyed state (Value/List/Map/Reducing/Aggregating, with and without TTL) against a naive
// reference: plain Maps of { value, written-at } cells per state and key, with Flink's TTL
// rules written out below (expired when written-at + ttl <= now; removed on access and at each
// checkpoint; renewed on read with OnReadAndWrite; returned once more with
// ReturnExpiredIfNotCleanedUp). Random operation scripts over several keys, batch splits and
// clock advances, run through the testkit's transform harness; a restart from a snapshot at any
// point equals the uninterrupted run. Every test runs on the memory backend and on the disk
// backend with a cache of two entries (three keys: every few operations evict to the file and
// read back from it).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  transformHarness as openHarness,
  type TransformHarness,
  type TransformHarnessOptions,
} from '@codefeedr/testkit';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTransform } from './component.js';
import type {
  DataStream,
  KeyedProcessContext,
  KeyedProcessFunction,
  StateTtlConfig,
} from './datastream.js';
import { isCodefeedrError } from './errors.js';
import { Any } from './message-type.js';
import type { TransformStage } from './stage.js';
import type { JsonValue } from './record.js';
import { DiskStateBackend } from './disk-keyed-map.js';
import type { StateBackend } from './keyed-map.js';

const diskDir = mkdtempSync(join(tmpdir(), 'cf-keyed-state-'));
afterAll(() => rmSync(diskDir, { recursive: true, force: true }));
/** The backend the tests in the current describe block run on (undefined: memory). */
let backend: StateBackend | undefined;
const opened: TransformHarness[] = [];
/** Closes every harness opened so far (their disk files go): after each test and property run. */
function closeHarnesses(): void {
  for (const h of opened.splice(0)) h.close();
}
afterEach(closeHarnesses);

function transformHarness<In extends readonly unknown[], Out>(
  stage: TransformStage<In, Out>,
  options: TransformHarnessOptions = {},
): TransformHarness<In, Out> {
  const h = openHarness(stage, {
    ...options,
    ...(backend === undefined ? {} : { stateBackend: backend }),
  });
  opened.push(h as unknown as TransformHarness);
  return h;
}

type Kind = 'value' | 'list' | 'map' | 'reducing' | 'aggregating';
const KINDS: readonly Kind[] = ['value', 'list', 'map', 'reducing', 'aggregating'];

type Op =
  | { s: Kind; op: 'get' | 'clear' }
  | { s: 'value' | 'list' | 'reducing' | 'aggregating'; op: 'update' | 'add'; v: number }
  | { s: 'list'; op: 'addAll' | 'replace'; vs: number[] }
  | { s: 'map'; op: 'mget' | 'contains' | 'remove'; k: string }
  | { s: 'map'; op: 'put'; k: string; v: number }
  | { s: 'map'; op: 'putAll'; entries: [string, number][] }
  | { s: 'map'; op: 'entries' | 'keys' | 'values' | 'isEmpty' };

interface Input {
  key: string;
  ops: Op[];
}

type Step =
  { kind: 'send'; inputs: Input[] } | { kind: 'advance'; ms: number } | { kind: 'snapshot' };

type TtlConfigs = Partial<Record<Kind, StateTtlConfig>>;

const reduce = (a: number, b: number): number => (a * 3 + b) % 1000;
const average = {
  createAccumulator: () => ({ n: 0, sum: 0 }),
  add: (v: number, acc: { n: number; sum: number }) => ({ n: acc.n + 1, sum: acc.sum + v }),
  getResult: (acc: { n: number; sum: number }) => `${acc.sum}/${acc.n}`,
};

/** Runs one op on the real state of the current key; what it returns is emitted. */
function apply(ctx: KeyedProcessContext<Input>, ttl: TtlConfigs, op: Op): unknown {
  const opts = (s: Kind) => (ttl[s] === undefined ? undefined : { ttl: ttl[s] });
  switch (op.s) {
    case 'value': {
      const st = ctx.state<number>('v', opts('value'));
      if (op.op === 'get') return st.value();
      if (op.op === 'clear') return st.clear();
      return st.update((op as { v: number }).v);
    }
    case 'list': {
      const st = ctx.listState<number>('l', opts('list'));
      if (op.op === 'get') return st.get();
      if (op.op === 'clear') return st.clear();
      if (op.op === 'add') return st.add(op.v);
      if (op.op === 'addAll') return st.addAll(op.vs);
      return st.update((op as { vs: number[] }).vs);
    }
    case 'map': {
      const st = ctx.mapState<string, number>('m', opts('map'));
      switch (op.op) {
        case 'mget':
          return st.get(op.k);
        case 'contains':
          return st.contains(op.k);
        case 'remove':
          return st.remove(op.k);
        case 'put':
          return st.put(op.k, op.v);
        case 'putAll':
          // Alternate the two accepted shapes.
          return st.putAll(
            op.entries.length % 2 === 0 ? new Map(op.entries) : Object.fromEntries(op.entries),
          );
        case 'entries':
          return st.entries();
        case 'keys':
          return st.keys();
        case 'values':
          return st.values();
        case 'isEmpty':
          return st.isEmpty();
        case 'clear':
          return st.clear();
        default:
          throw new Error(`no map op ${op.op}`);
      }
    }
    case 'reducing': {
      const st = ctx.reducingState<number>('r', reduce, opts('reducing'));
      if (op.op === 'get') return st.get();
      if (op.op === 'clear') return st.clear();
      return st.add((op as { v: number }).v);
    }
    case 'aggregating': {
      const st = ctx.aggregatingState('a', average, opts('aggregating'));
      if (op.op === 'get') return st.get();
      if (op.op === 'clear') return st.clear();
      return st.add((op as { v: number }).v);
    }
  }
}

/** A one-input stage running `fn` on records keyed by `key`. */
function keyedProcessStage<T>(
  name: string,
  key: (value: T) => string,
  fn: KeyedProcessFunction<T, unknown>,
) {
  return defineTransform({
    name,
    description: 'a keyed process function under test',
    configSchema: z.object({}),
    inputTypes: [Any],
    outputType: Any,
    transform: ([inputs]) =>
      (inputs as DataStream<T>).keyBy(key).process(fn) as DataStream<unknown>,
  }).create(name);
}

function stateStage(ttl: TtlConfigs) {
  return keyedProcessStage<Input>('state', (i) => i.key, {
    processElement(input, ctx, out) {
      out.collect(input.ops.map((op) => apply(ctx, ttl, op)));
    },
  });
}

// ---- The reference: plain Maps of cells, Flink's TTL rules spelled out per operation. ----

interface Cell {
  value: unknown;
  at: number;
}

class Reference {
  now = 0;
  private readonly single: Record<'value' | 'reducing' | 'aggregating', Map<string, Cell>> = {
    value: new Map(),
    reducing: new Map(),
    aggregating: new Map(),
  };
  private readonly lists = new Map<string, Cell[]>();
  private readonly maps = new Map<string, Map<string, Cell>>();

  constructor(private readonly ttl: TtlConfigs) {}

  private gone(s: Kind, c: Cell): boolean {
    const t = this.ttl[s];
    return t !== undefined && c.at + t.ttlMs <= this.now;
  }

  private renewsOnRead(s: Kind): boolean {
    return this.ttl[s]?.updateType === 'OnReadAndWrite';
  }

  private showsExpired(s: Kind): boolean {
    return this.ttl[s]?.visibility === 'ReturnExpiredIfNotCleanedUp';
  }

  /** A read of one cell: undefined when absent; an expired one is dropped (and maybe shown). */
  private read(s: Kind, c: Cell | undefined, drop: () => void): unknown {
    if (c === undefined) return undefined;
    if (this.gone(s, c)) {
      drop();
      return this.showsExpired(s) ? c.value : undefined;
    }
    if (this.renewsOnRead(s)) c.at = this.now;
    return c.value;
  }

  private cell(value: unknown): Cell {
    return { value, at: this.now };
  }

  run(key: string, op: Op): unknown {
    if (op.s === 'list') return this.list(key, op as Op & { s: 'list' });
    if (op.s === 'map') return this.map(key, op as Op & { s: 'map' });
    const cells = this.single[op.s];
    const drop = () => cells.delete(key);
    if (op.op === 'clear') return void cells.delete(key);
    if (op.op === 'get') {
      const v = this.read(op.s, cells.get(key), drop);
      return op.s === 'aggregating' && v !== undefined
        ? average.getResult(v as { n: number; sum: number })
        : v;
    }
    const v = (op as { v: number }).v;
    if (op.s === 'value') return void cells.set(key, this.cell(v));
    // A write builds on the old value unless it expired and expired values are hidden.
    const old = cells.get(key);
    const base =
      old === undefined || (this.gone(op.s, old) && !this.showsExpired(op.s))
        ? undefined
        : old.value;
    if (op.s === 'reducing')
      cells.set(key, this.cell(base === undefined ? v : reduce(base as number, v)));
    else
      cells.set(
        key,
        this.cell(
          average.add(v, (base as { n: number; sum: number }) ?? average.createAccumulator()),
        ),
      );
    return undefined;
  }

  private list(key: string, op: Op & { s: 'list' }): unknown {
    const cells = this.lists.get(key) ?? [];
    const store = (next: Cell[]) =>
      next.length === 0 ? this.lists.delete(key) : this.lists.set(key, next);
    switch (op.op) {
      case 'clear':
        return void this.lists.delete(key);
      case 'add':
        return void store([...cells, this.cell(op.v)]);
      case 'addAll':
        return void store([...cells, ...op.vs.map((v) => this.cell(v))]);
      case 'replace':
        return void store(op.vs.map((v) => this.cell(v)));
      default: {
        const shown = cells
          .filter((c) => !this.gone('list', c) || this.showsExpired('list'))
          .map((c) => c.value);
        const kept = cells.filter((c) => !this.gone('list', c));
        if (this.renewsOnRead('list')) for (const c of kept) c.at = this.now;
        store(kept);
        return shown;
      }
    }
  }

  private map(key: string, op: Op & { s: 'map' }): unknown {
    const entries = this.maps.get(key) ?? new Map<string, Cell>();
    const save = () => (entries.size === 0 ? this.maps.delete(key) : this.maps.set(key, entries));
    const readAt = (k: string) => this.read('map', entries.get(k), () => entries.delete(k));
    let result: unknown;
    switch (op.op) {
      case 'clear':
        entries.clear();
        break;
      case 'put':
        entries.set(op.k, this.cell(op.v));
        break;
      case 'putAll':
        for (const [k, v] of op.entries) entries.set(k, this.cell(v));
        break;
      case 'remove':
        entries.delete(op.k);
        break;
      case 'mget':
        result = readAt(op.k);
        break;
      case 'contains':
        result = readAt(op.k) !== undefined;
        break;
      case 'isEmpty':
        result = true;
        for (const k of [...entries.keys()]) {
          if (readAt(k) !== undefined) {
            result = false;
            break;
          }
        }
        break;
      default: {
        const seen: [string, unknown][] = [];
        for (const k of [...entries.keys()]) {
          const v = readAt(k);
          if (v !== undefined) seen.push([k, v]);
        }
        result = op.op === 'entries' ? seen : seen.map(([k, v]) => (op.op === 'keys' ? k : v));
      }
    }
    save();
    return result;
  }

  /** A checkpoint removes every expired cell. */
  snapshot(): void {
    for (const s of ['value', 'reducing', 'aggregating'] as const) {
      for (const [k, c] of this.single[s]) if (this.gone(s, c)) this.single[s].delete(k);
    }
    for (const [k, cells] of this.lists) {
      const kept = cells.filter((c) => !this.gone('list', c));
      if (kept.length === 0) this.lists.delete(k);
      else this.lists.set(k, kept);
    }
    for (const [k, entries] of this.maps) {
      for (const [mk, c] of entries) if (this.gone('map', c)) entries.delete(mk);
      if (entries.size === 0) this.maps.delete(k);
    }
  }
}

function referenceRun(ttl: TtlConfigs, steps: readonly Step[]): unknown[] {
  const ref = new Reference(ttl);
  const out: unknown[] = [];
  for (const step of steps) {
    if (step.kind === 'advance') ref.now += step.ms;
    else if (step.kind === 'snapshot') ref.snapshot();
    else for (const input of step.inputs) out.push(input.ops.map((op) => ref.run(input.key, op)));
  }
  return out;
}

/** Drives a harness; `restartAt` replaces that step (a snapshot) by a restart from it. */
function drive(
  first: TransformHarness,
  steps: readonly Step[],
  ttl: TtlConfigs,
  restartAt = -1,
): unknown[] {
  let h = first;
  const out: unknown[] = [];
  steps.forEach((step, i) => {
    if (step.kind === 'advance') h.advanceTime(step.ms);
    else if (step.kind === 'send') out.push(...h.send(step.inputs).map((r) => r.value));
    else {
      expectNoExpiredState(h.snapshot(), ttl, h.now);
      if (i === restartAt) opened.push((h = h.restarted()));
    }
  });
  return out;
}

/** A checkpoint holds no value, element or entry whose time to live has passed. */
function expectNoExpiredState(snapshot: JsonValue, ttl: TtlConfigs, now: number): void {
  const ops = (snapshot as { operators: Record<string, { state: Record<string, unknown> }> })
    .operators;
  for (const { state } of Object.values(ops)) {
    const keyed = (state.keyedStates ?? {}) as Record<
      string,
      { kind: Kind; ttl?: StateTtlConfig; entries: [string, unknown][] }
    >;
    for (const { kind, ttl: declared, entries } of Object.values(keyed)) {
      if (declared === undefined) continue;
      expect(declared.ttlMs).toBe(ttl[kind]!.ttlMs);
      const times = entries.flatMap(([, data]) =>
        kind === 'list'
          ? (data as [unknown, number][]).map(([, t]) => t)
          : kind === 'map'
            ? (data as [string, unknown, number][]).map(([, , t]) => t)
            : [(data as [unknown, number])[1]],
      );
      for (const t of times) expect(t + declared.ttlMs).toBeGreaterThan(now);
    }
  }
}

const keyArb = fc.constantFrom('a', 'b', 'c');
const mapKeyArb = fc.constantFrom('x', 'y', 'z', 'w');
const numArb = fc.integer({ min: 0, max: 99 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ s: fc.constantFrom(...KINDS), op: fc.constant('clear' as const) }),
  fc.record({
    s: fc.constantFrom(
      'value' as const,
      'list' as const,
      'reducing' as const,
      'aggregating' as const,
    ),
    op: fc.constant('get' as const),
  }),
  fc.record({ s: fc.constant('value' as const), op: fc.constant('update' as const), v: numArb }),
  fc.record({
    s: fc.constantFrom('list' as const, 'reducing' as const, 'aggregating' as const),
    op: fc.constant('add' as const),
    v: numArb,
  }),
  fc.record({
    s: fc.constant('list' as const),
    op: fc.constantFrom('addAll' as const, 'replace' as const),
    vs: fc.array(numArb, { maxLength: 3 }),
  }),
  fc.record({
    s: fc.constant('map' as const),
    op: fc.constantFrom('mget' as const, 'contains' as const, 'remove' as const),
    k: mapKeyArb,
  }),
  fc.record({
    s: fc.constant('map' as const),
    op: fc.constant('put' as const),
    k: mapKeyArb,
    v: numArb,
  }),
  fc.record({
    s: fc.constant('map' as const),
    op: fc.constant('putAll' as const),
    entries: fc.uniqueArray(fc.tuple(mapKeyArb, numArb), { selector: ([k]) => k, maxLength: 3 }),
  }),
  fc.record({
    s: fc.constant('map' as const),
    op: fc.constantFrom('entries' as const, 'keys' as const, 'values' as const, 'isEmpty' as const),
  }),
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      inputs: fc.array(
        fc.record({ key: keyArb, ops: fc.array(opArb, { minLength: 1, maxLength: 4 }) }),
        {
          maxLength: 4,
        },
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
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
);
const ttlArb: fc.Arbitrary<StateTtlConfig> = fc.record({
  ttlMs: fc.integer({ min: 1, max: 12 }),
  updateType: fc.constantFrom('OnCreateAndWrite' as const, 'OnReadAndWrite' as const),
  visibility: fc.constantFrom(
    'NeverReturnExpired' as const,
    'ReturnExpiredIfNotCleanedUp' as const,
  ),
});
const ttlsArb: fc.Arbitrary<TtlConfigs> = fc.record(
  Object.fromEntries(KINDS.map((k) => [k, ttlArb])) as Record<Kind, fc.Arbitrary<StateTtlConfig>>,
  { requiredKeys: [] },
);
const stepsArb = fc.array(stepArb, { maxLength: 25 });

describe.each(['memory', 'disk'] as const)('keyed state on the %s backend', (name) => {
  beforeAllOf(name);

  it('equals a Map-based reference for random operations, keys, TTLs, batch splits and clock advances', () => {
    fc.assert(
      fc.property(ttlsArb, stepsArb, (ttl, steps) => {
        try {
          const h = transformHarness(stateStage(ttl), { now: 1000 });
          const out = drive(h, steps, ttl);
          const ref = referenceRun(ttl, steps);
          expect(out).toEqual(ref);
          expect(h.deadLetters).toEqual([]);
        } finally {
          closeHarnesses();
        }
      }),
      { numRuns: 800 },
    );
  });

  it('a restart from a snapshot at any point continues exactly as the uninterrupted run', () => {
    fc.assert(
      fc.property(ttlsArb, stepsArb, fc.nat(), (ttl, steps, at) => {
        const cut = at % (steps.length + 1);
        const withSnapshot: Step[] = [
          ...steps.slice(0, cut),
          { kind: 'snapshot' },
          ...steps.slice(cut),
        ];
        try {
          const whole = drive(transformHarness(stateStage(ttl), { now: 1000 }), withSnapshot, ttl);
          const restarted = drive(
            transformHarness(stateStage(ttl), { now: 1000 }),
            withSnapshot,
            ttl,
            cut,
          );
          expect(restarted).toEqual(whole);
          expect(whole).toEqual(referenceRun(ttl, withSnapshot));
        } finally {
          closeHarnesses();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('TTL: OnCreateAndWrite vs OnReadAndWrite, NeverReturnExpired vs ReturnExpiredIfNotCleanedUp', () => {
    const run = (ttl: StateTtlConfig) => {
      const h = transformHarness(stateStage({ map: ttl }), { now: 0 });
      const put = { s: 'map', op: 'put', k: 'x', v: 1 } as const;
      const get = { s: 'map', op: 'mget', k: 'x' } as const;
      h.send([{ key: 'a', ops: [put] }]);
      h.advanceTime(6);
      h.send([{ key: 'a', ops: [get] }]); // t=6: alive; renews with OnReadAndWrite
      h.advanceTime(6);
      h.send([{ key: 'a', ops: [get, get] }]); // t=12
      return h.values.slice(1);
    };
    const ttl = (u: StateTtlConfig['updateType'], v: StateTtlConfig['visibility']) => ({
      ttlMs: 10,
      updateType: u,
      visibility: v,
    });
    expect(run(ttl('OnCreateAndWrite', 'NeverReturnExpired'))).toEqual([
      [1],
      [undefined, undefined],
    ]);
    expect(run(ttl('OnReadAndWrite', 'NeverReturnExpired'))).toEqual([[1], [1, 1]]);
    // Returned once more, and gone from then on (the read cleaned it up).
    expect(run(ttl('OnCreateAndWrite', 'ReturnExpiredIfNotCleanedUp'))).toEqual([
      [1],
      [1, undefined],
    ]);
  });

  it('a ValueState-only operator checkpoints in the old format, and an old checkpoint restores', () => {
    const h = transformHarness(stateStage({}), { now: 0 });
    h.send([{ key: 'a', ops: [{ s: 'value', op: 'update', v: 7 }] }]);
    const snapshot = h.snapshot() as { operators: Record<string, { kind: string; state: object }> };
    const [id, op] = Object.entries(snapshot.operators).find(([, o]) => o.kind === 'keyedProcess')!;
    expect(Object.keys(op.state).sort()).toEqual(['states', 'timers', 'watermark']);
    // A checkpoint written before the other kinds of state existed.
    const old = {
      version: 1,
      operators: {
        [id]: {
          kind: 'keyedProcess',
          state: { watermark: '-inf', states: { v: [['b', 41]] }, timers: [['b', 5]] },
        },
      },
    };
    const restored = transformHarness(stateStage({}), { state: old });
    restored.send([{ key: 'b', ops: [{ s: 'value', op: 'get' }] }]);
    expect(restored.values).toEqual([[41]]);
  });

  it('a checkpoint of a state without TTL restores into a declaration with TTL (timed from the restore) and back', () => {
    const put = { s: 'list', op: 'add', v: 3 } as const;
    const get = { s: 'list', op: 'get' } as const;
    const plain = transformHarness(stateStage({}), { now: 0 });
    plain.send([{ key: 'a', ops: [put] }]);
    const withTtl = transformHarness(stateStage({ list: { ttlMs: 5 } }), {
      now: 100,
      state: plain.snapshot(),
    });
    withTtl.send([{ key: 'a', ops: [get] }]);
    withTtl.advanceTime(5);
    withTtl.send([{ key: 'a', ops: [get] }]);
    expect(withTtl.values).toEqual([[[3]], [[]]]);
    withTtl.send([{ key: 'a', ops: [put] }]);
    const back = transformHarness(stateStage({}), { now: 1_000_000, state: withTtl.snapshot() });
    back.send([{ key: 'a', ops: [get] }]);
    expect(back.values).toEqual([[[3]]]);
  });

  it('one name used as two kinds of state fails the stage; so does a checkpoint of another kind', () => {
    const clash = keyedProcessStage<string>('clash', (v) => v, {
      processElement(v, ctx) {
        if (v === 'list') ctx.listState('x').add(1);
        else ctx.mapState('x').put('k', 1);
      },
    });
    const h = transformHarness(clash);
    h.send(['list']);
    const thrown = (() => {
      try {
        h.send(['map']);
      } catch (error) {
        return error;
      }
    })();
    expect(isCodefeedrError(thrown) && thrown.code).toBe('DATAFLOW_GRAPH_INVALID');
    expect(String((thrown as Error).message)).toMatch(/"x" is a ListState, used as a MapState/);

    const first = transformHarness(clash);
    first.send(['list']);
    const again = transformHarness(clash, { state: first.snapshot() });
    expect(() => again.send(['map'])).toThrow(
      /checkpointed as a ListState and is declared as a MapState/,
    );
  });

  it('refuses a TTL that is not a positive number of milliseconds', () => {
    const h = transformHarness(stateStage({ value: { ttlMs: 0 } }));
    expect(() => h.send([{ key: 'a', ops: [{ s: 'value', op: 'get' }] }])).toThrow(/ttl.ttlMs 0/);
  });
});

describe("keyed state beyond the disk backend's cache", () => {
  beforeAllOf('disk');

  it('with more keys than the cache holds, equals the memory backend (evictions read back from the file, snapshots and restores between)', () => {
    const manyKeys = fc.integer({ min: 0, max: 11 }).map((i) => `key${i}`);
    const manySteps = fc.array(
      fc.oneof(
        {
          weight: 5,
          arbitrary: fc.record({
            kind: fc.constant('send' as const),
            inputs: fc.array(
              fc.record({ key: manyKeys, ops: fc.array(opArb, { minLength: 1, maxLength: 3 }) }),
              { minLength: 1, maxLength: 8 },
            ),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(8) }),
        },
        { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
      ),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(ttlsArb, manySteps, fc.nat(), (ttl, steps, at) => {
        try {
          const cut = steps.findIndex((step, i) => step.kind === 'snapshot' && i >= at % 30);
          const onDisk = drive(transformHarness(stateStage(ttl), { now: 1000 }), steps, ttl, cut);
          backend = undefined;
          const inMemory = drive(transformHarness(stateStage(ttl), { now: 1000 }), steps, ttl);
          expect(onDisk).toEqual(inMemory);
        } finally {
          backend = new DiskStateBackend({ dir: diskDir, cacheEntries: 2 });
          closeHarnesses();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a TTL renewal on read and a cleanup at a checkpoint survive the entry leaving the cache', () => {
    const ttl = (updateType: StateTtlConfig['updateType']): StateTtlConfig => ({
      ttlMs: 10,
      updateType,
      visibility: 'ReturnExpiredIfNotCleanedUp',
    });
    // Reads of other keys push `a` out of the two-entry cache of every state.
    const evictA = ['b', 'c', 'd'].map((key) => ({
      key,
      ops: [
        { s: 'value', op: 'get' },
        { s: 'list', op: 'get' },
        { s: 'map', op: 'entries' },
      ] as Op[],
    }));
    const renewed = transformHarness(
      stateStage({
        value: ttl('OnReadAndWrite'),
        list: ttl('OnReadAndWrite'),
        map: ttl('OnReadAndWrite'),
      }),
      { now: 0 },
    );
    const write: Op[] = [
      { s: 'value', op: 'update', v: 1 },
      { s: 'list', op: 'add', v: 2 },
      { s: 'map', op: 'put', k: 'x', v: 3 },
    ];
    const read: Op[] = [
      { s: 'value', op: 'get' },
      { s: 'list', op: 'get' },
      { s: 'map', op: 'mget', k: 'x' },
    ];
    renewed.send([{ key: 'a', ops: write }]);
    renewed.snapshot(); // written to the file, clean in the cache
    renewed.advanceTime(6);
    renewed.send([{ key: 'a', ops: read }, ...evictA]); // renewed to t=6, then evicted
    renewed.advanceTime(6);
    renewed.send([{ key: 'a', ops: [...read, ...read] }]); // t=12: alive (expires at 16)
    expect(renewed.values.at(-1)).toEqual([1, [2], 3, 1, [2], 3]);

    const cleaned = transformHarness(
      stateStage({ list: ttl('OnCreateAndWrite'), map: ttl('OnCreateAndWrite') }),
      { now: 0 },
    );
    cleaned.send([
      {
        key: 'a',
        ops: [
          { s: 'list', op: 'add', v: 1 },
          { s: 'map', op: 'put', k: 'x', v: 1 },
        ],
      },
    ]);
    cleaned.advanceTime(5);
    cleaned.send([
      {
        key: 'a',
        ops: [
          { s: 'list', op: 'add', v: 2 },
          { s: 'map', op: 'put', k: 'y', v: 2 },
        ],
      },
    ]);
    cleaned.snapshot();
    cleaned.advanceTime(6);
    cleaned.snapshot(); // t=11: removes the first element and entry, keeps the second
    cleaned.send(evictA);
    cleaned.send([
      {
        key: 'a',
        ops: [
          { s: 'list', op: 'get' },
          { s: 'map', op: 'entries' },
        ],
      },
    ]);
    // Not returned once more: the checkpoint cleaned them up.
    expect(cleaned.values.at(-1)).toEqual([[2], [['y', 2]]]);
  });

  it('closing the harness deletes its database files', () => {
    const h = transformHarness(stateStage({ map: { ttlMs: 50 } }), { now: 0 });
    h.send([{ key: 'a', ops: [{ s: 'map', op: 'put', k: 'x', v: 1 }] }]);
    expect(readdirSync(diskDir).length).toBeGreaterThan(0);
    closeHarnesses();
    expect(readdirSync(diskDir)).toEqual([]);
  });
});

/** Points `backend` at the describe block's backend while its tests run. */
function beforeAllOf(name: 'memory' | 'disk'): void {
  beforeAll(() => {
    backend = name === 'disk' ? new DiskStateBackend({ dir: diskDir, cacheEntries: 2 }) : undefined;
  });
  afterAll(() => {
    backend = undefined;
  });
}
