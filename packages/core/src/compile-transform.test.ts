import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileChain } from './chain-harness.js';
import type { DataStream } from './datastream.js';
import type { StreamRecord } from './record.js';
import { murmur2Partition } from './murmur2.js';
import type { StateFilter } from './operators.js';
import { partitionOfChannel } from './state-shards.js';
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
