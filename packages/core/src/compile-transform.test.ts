import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from './console-logger.js';
import { compileChain } from './chain-harness.js';
import type { DataStream } from './datastream.js';
import type { StreamRecord } from './record.js';
import { murmur2Partition } from './murmur2.js';
import type { StateFilter } from './operators.js';
import { PartitionStateShards, partitionOfChannel } from './state-shards.js';
import { FileStateStore } from './state-store.js';
import { outputTag } from './stream-graph.js';

interface Event {
  key: string;
  n: number;
}

const late = outputTag<Event>('late');
const withTime = (s: DataStream<unknown>) =>
  (s as DataStream<Event>).assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 20 });

/** Each kind of state on its own: running reduce, windows with lateness, sessions, keyed timers. */
const stateKinds: ((events: DataStream<Event>) => DataStream<string>)[] = [
  (events) =>
    events
      .keyBy((e) => e.key)
      .reduce((a, b) => ({ key: a.key, n: a.n + b.n }))
      .map((e) => `total ${e.key} ${e.n}`),
  (events) => {
    const windows = events
      .keyBy((e) => e.key)
      .window({ type: 'tumbling', sizeMs: 30 })
      .allowedLateness(10)
      .sideOutputLateData(late)
      .process<string>((key, w, values, out) => {
        out.collect(`window ${key} ${w.start} ${values.map((v) => v.n).join(',')}`);
      });
    return windows.union(windows.getSideOutput(late).map((e) => `late ${e.key} ${e.n}`));
  },
  (events) =>
    events
      .keyBy((e) => e.key)
      .window({ type: 'session', gapMs: 15 })
      .reduce((a, b) => ({ key: a.key, n: a.n + b.n }))
      .map((e) => `session ${e.key} ${e.n}`),
  (events) =>
    events
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
      }),
];

/** A stage using every kind of state on every key. */
function everyState(s: DataStream<unknown>): DataStream<unknown> {
  const events = withTime(s);
  const [first, ...rest] = stateKinds.map((kind) => kind(events));
  return first!.union(...rest);
}

/**
 * Each kind of state on keys of its own (reduce: a, b; windows: c, d; sessions: e; timers:
 * f, g), so a kind whose changes go unrecorded shows in the output.
 */
function statePerKey(s: DataStream<unknown>): DataStream<unknown> {
  const events = withTime(s);
  const [first, ...rest] = ['ab', 'cd', 'e', 'fg'].map((keys, i) =>
    stateKinds[i]!(events.filter((e) => keys.includes(e.key))),
  );
  return first!.union(...rest);
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

  it('a checkpoint split into partition shards and merged back in any order continues as the uninterrupted run', () => {
    // Keys and channels of two partitions, as the runtime shards state (state-shards.ts).
    const shardOf = (p: number): StateFilter => ({
      key: (k) => murmur2Partition(k, 2) === p,
      channel: (c) => partitionOfChannel(c) === p,
    });
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 150 }),
        fc.array(fc.nat({ max: 150 }), { maxLength: 8 }).map((c) => c.sort((a, b) => a - b)),
        fc.nat(),
        fc.boolean(),
        (events, cuts, pick, reversed) => {
          // Co-partitioned: each key's records come through its own partition's channel.
          const input: StreamRecord[] = events.map((e) => ({
            value: { key: e.key, n: e.n },
            timestamp: e.timestamp,
          }));
          const batches = batchesOf(input, cuts).flatMap((b) =>
            [0, 1].map((p) => b.filter((r) => murmur2Partition((r.value as Event).key, 2) === p)),
          );
          const channelOf = (i: number) => `in/${i % 2}`;
          const whole = compileChain(everyState, { clock: () => 0 });
          whole.chain.assignChannels!(0, ['in/0', 'in/1']);
          const expected = batches.flatMap((b, i) => whole.chain.processBatch(0, channelOf(i), b));
          expected.push(...whole.chain.finish());

          const split = 2 * (pick % (batches.length / 2 + 1));
          const first = compileChain(everyState, { clock: () => 0 });
          first.chain.assignChannels!(0, ['in/0', 'in/1']);
          const got = batches
            .slice(0, split)
            .flatMap((b, i) => first.chain.processBatch(0, channelOf(i), b));
          const shards = [0, 1].map((p) =>
            JSON.parse(JSON.stringify(first.chain.snapshotState(shardOf(p)))),
          );
          const second = compileChain(everyState, { clock: () => 0 });
          for (const shard of reversed ? shards.reverse() : shards)
            second.chain.restoreState(shard, true);
          second.chain.assignChannels!(0, ['in/0', 'in/1']);
          got.push(
            ...batches
              .slice(split)
              .flatMap((b, i) => second.chain.processBatch(0, channelOf(split + i), b)),
            ...second.chain.finish(),
          );
          const show = (out: StreamRecord[]) =>
            out.map((r) => `${r.timestamp} ${String(r.value)}`).sort();
          expect(show(got)).toEqual(show(expected));

          // Dropping a partition leaves exactly the other partition's shard.
          first.chain.dropState!(shardOf(0));
          expect(first.chain.snapshotState()).toEqual(first.chain.snapshotState(shardOf(1)));
          expect(JSON.parse(JSON.stringify(first.chain.snapshotState()))).toEqual(
            shards[reversed ? 0 : 1],
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('incremental checkpoints (a whole shard, then deltas of the changed keys) restore into a fresh worker that continues as the uninterrupted run', async () => {
    let deltasSeen = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            key: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'),
            n: fc.integer({ min: 0, max: 99 }),
            timestamp: fc.integer({ min: 0, max: 400 }),
          }),
          { maxLength: 150 },
        ),
        fc.array(fc.nat({ max: 150 }), { maxLength: 24 }).map((c) => c.sort((a, b) => a - b)),
        fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
        fc.nat(),
        async (events, cuts, saveAfter, pick) => {
          const dir = await mkdtemp(join(tmpdir(), 'cf-incremental-'));
          try {
            const input: StreamRecord[] = events.map((e) => ({
              value: { key: e.key, n: e.n },
              timestamp: e.timestamp,
            }));
            const batches = batchesOf(input, cuts).flatMap((b) =>
              [0, 1].map((p) => b.filter((r) => murmur2Partition((r.value as Event).key, 2) === p)),
            );
            const channelOf = (i: number) => `in/${i % 2}`;
            const whole = compileChain(statePerKey, { clock: () => 0 });
            whole.chain.assignChannels!(0, ['in/0', 'in/1']);
            const expected = batches.flatMap((b, i) =>
              whole.chain.processBatch(0, channelOf(i), b),
            );
            expected.push(...whole.chain.finish());

            // A worker saving at random batch boundaries (most saves deltas), then dying.
            const store = new FileStateStore(dir);
            const split = 2 * (pick % (batches.length / 2 + 1));
            const first = compileChain(statePerKey, { clock: () => 0 });
            const firstShards = new PartitionStateShards(
              store,
              'p',
              's',
              2,
              first.chain,
              silentLogger,
            );
            await firstShards.reassign(new Set([0, 1]));
            first.chain.assignChannels!(0, ['in/0', 'in/1']);
            const got: StreamRecord[] = [];
            for (let i = 0; i < split; i++) {
              got.push(...first.chain.processBatch(0, channelOf(i), batches[i]!));
              if (saveAfter[i] === true || i === split - 1)
                await firstShards.save({ 'in/0': String(i), 'in/1': String(i) });
            }
            if (split > 0)
              deltasSeen += (await readdir(join(dir, 'p', 's.state'))).filter((f) =>
                f.endsWith('.delta.json'),
              ).length;

            // Its successor loads both partitions (whole shard + deltas) and goes on.
            const second = compileChain(statePerKey, { clock: () => 0 });
            const secondShards = new PartitionStateShards(
              store,
              'p',
              's',
              2,
              second.chain,
              silentLogger,
            );
            await secondShards.reassign(new Set([0, 1]));
            // What the restored shards made due comes out here (the runtime emits it).
            got.push(
              ...second.chain.assignChannels!(0, ['in/0', 'in/1']),
              ...batches
                .slice(split)
                .flatMap((b, i) => second.chain.processBatch(0, channelOf(split + i), b)),
              ...second.chain.finish(),
            );
            const show = (out: StreamRecord[]) =>
              out.map((r) => `${r.timestamp} ${String(r.value)}`).sort();
            expect(show(got)).toEqual(show(expected));
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 100 },
    );
    // The property went through deltas, not only whole shards.
    expect(deltasSeen).toBeGreaterThan(100);
  }, 60_000);

  it('a timer that fired is not in the next delta’s key, so a restore does not fire it again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-incremental-'));
    try {
      const timers = (s: DataStream<unknown>) => stateKinds[3]!(withTime(s));
      const [f, g] = ['f', 'g'];
      expect([f, g].map((k) => murmur2Partition(k, 2))).toEqual([1, 1]);
      const store = new FileStateStore(dir);
      const first = compileChain(timers, { clock: () => 0 });
      const shards = new PartitionStateShards(store, 'p', 's', 2, first.chain, silentLogger);
      await shards.reassign(new Set([1]));
      first.chain.assignChannels!(0, ['in/1']);
      first.chain.processBatch(0, 'in/1', [{ value: { key: f, n: 1 }, timestamp: 0 }]);
      await shards.save({ 'in/1': '1' }); // whole: f's timer at 25
      first.chain.processBatch(0, 'in/1', [{ value: { key: g, n: 2 }, timestamp: 30 }]);
      await shards.save({ 'in/1': '2' }); // delta: g's timer at 55
      const fired = first.chain.processBatch(0, 'in/1', [
        { value: { key: g, n: 3 }, timestamp: 100 },
      ]);
      expect(fired.map((r) => r.value)).toEqual(['timer f 25 [1]', 'timer g 55 [2,3]']);
      await shards.save({ 'in/1': '3' }); // delta: f's and g's timers are gone
      expect((await readdir(join(dir, 'p', 's.state'))).sort()).toEqual([
        'partition-1.1.json',
        'partition-1.2.delta.json',
        'partition-1.3.delta.json',
      ]);

      const second = compileChain(timers, { clock: () => 0 });
      await new PartitionStateShards(store, 'p', 's', 2, second.chain, silentLogger).reassign(
        new Set([1]),
      );
      const out = [...second.chain.assignChannels!(0, ['in/1']), ...second.chain.finish()];
      expect(out.map((r) => r.value)).toEqual(['timer g 125 [2,3]']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a merged shard fires at once what is due at the watermark the chain has passed already', () => {
    const counts = (s: DataStream<unknown>) =>
      (s as DataStream<Event>)
        .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
        .keyBy((e) => e.key)
        .window({ type: 'tumbling', sizeMs: 10 })
        .process<string>((key, w, values, out) =>
          out.collect(`${key} ${w.start} ${values.length}`),
        );
    const [k0, k1] = ['a', 'b', 'c', 'd', 'e'].reduce<[string[], string[]]>(
      (acc, k) => (acc[murmur2Partition(k, 2)]!.push(k), acc),
      [[], []],
    );
    // Worker y had partition 0 up to event time 15: its window [0, 10) fired, [10, 20) is open.
    const y = compileChain(counts);
    y.chain.assignChannels!(0, ['in/0']);
    const fired = y.chain.processBatch(0, 'in/0', [
      { value: { key: k0![0]!, n: 1 }, timestamp: 5 },
      { value: { key: k0![0]!, n: 1 }, timestamp: 12 },
      { value: { key: k0![0]!, n: 1 }, timestamp: 15 },
    ]);
    expect(fired.map((r) => r.value)).toEqual([`${k0![0]} 0 1`]);
    const shard = JSON.parse(
      JSON.stringify(
        y.chain.snapshotState({ key: (k) => murmur2Partition(k, 2) === 0, channel: () => true }),
      ),
    );
    // Worker x is at event time 100 on partition 1 when partition 0 comes to it.
    const x = compileChain(counts);
    x.chain.assignChannels!(0, ['in/1']);
    x.chain.processBatch(0, 'in/1', [{ value: { key: k1![0]!, n: 1 }, timestamp: 100 }]);
    x.chain.restoreState(shard, true);
    // No record of partition 0 needs to come: the window [10, 20) is due at x's watermark.
    expect(x.chain.tick(0).map((r) => r.value)).toEqual([`${k0![0]} 10 2`]);
  });

  it('reset() gives a chain that continues exactly as a new one (nothing fired is kept, no watermark)', () => {
    // A worker whose transaction aborted redoes its batches from the committed state: what it
    // processed, fired and advanced since must be gone, or windows fire twice or records are
    // late. The reference is a chain built afresh.
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 80 }),
        fc.array(eventArb, { maxLength: 80 }),
        fc.boolean(),
        (before, after, mergeFirst) => {
          const toRecords = (events: typeof before) =>
            events.map((e) => ({ value: { key: e.key, n: e.n }, timestamp: e.timestamp }));
          // Far ahead in event time on both channels: what a merged shard holds is due at once.
          const used = compileChain(statePerKey);
          used.chain.assignChannels!(0, ['in/0', 'in/1']);
          const ahead = { value: { key: 'a', n: 0 }, timestamp: 10_000 };
          used.chain.processBatch(0, 'in/0', [...toRecords(before), ahead]);
          used.chain.processBatch(0, 'in/1', [ahead]);
          if (mergeFirst) {
            // The merge fires what is due into the chain's output, not returned yet.
            const other = compileChain(statePerKey);
            other.chain.processBatch(0, 'in/0', toRecords(before));
            used.chain.restoreState(JSON.parse(JSON.stringify(other.chain.snapshotState())), true);
          }
          used.chain.reset!();
          expect(used.chain.currentWatermark!()).toBe(-Infinity);
          const fresh = compileChain(statePerKey);
          const run = (chain: typeof fresh.chain) => {
            chain.assignChannels!(0, ['in/0']);
            // Two batches: a watermark moves between them, so the second can have late records.
            const records = toRecords(after);
            const half = records.length >> 1;
            const out = chain.processBatch(0, 'in/0', records.slice(0, half));
            out.push(...chain.processBatch(0, 'in/0', records.slice(half)), ...chain.finish());
            return out.map((r) => `${r.timestamp} ${String(r.value)}`);
          };
          expect(run(used.chain)).toEqual(run(fresh.chain));
        },
      ),
      { numRuns: 100 },
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
