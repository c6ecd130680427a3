import { describe, expect, it } from 'vitest';
import { compileChain } from './chain-harness.js';
import type { DataStream, KeyedProcessFunction } from './datastream.js';
import type { JsonValue, StreamRecord } from './record.js';

interface Reading {
  at: string;
}

/** Emits "timer <t>" when the watermark reaches t; makes watermarks observable as output. */
const alarm: KeyedProcessFunction<Reading, string> = {
  processElement(_v, ctx) {
    ctx.timerService.registerEventTimeTimer(ctx.timestamp);
  },
  onTimer(timestamp, _ctx, out) {
    out.collect(`timer ${timestamp}`);
  },
};

const reading = (at: string, timestamp = 0): StreamRecord<Reading> => ({
  value: { at },
  timestamp,
});

function chainWith(idleTimeoutMs?: number) {
  return compileChain(
    (s) =>
      (s as DataStream<Reading>)
        .assignTimestampsAndWatermarks({
          maxOutOfOrdernessMs: 5,
          timestampAssigner: (r) => Date.parse(r.at),
          ...(idleTimeoutMs ? { idleTimeoutMs } : {}),
        })
        .keyBy(() => 'k')
        .process(alarm) as DataStream<unknown>,
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('watermarks', () => {
  it('assigns timestamps from the value and bounds out-of-orderness (watermark = max - bound - 1)', () => {
    const { chain } = chainWith();
    const out = chain.processBatch(0, 'p0', [reading(iso(100), 0), reading(iso(94), 0)]);
    // Watermark 100 - 5 - 1 = 94: the timer at 94 fires, the one at 100 waits.
    expect(out.map((r) => r.value)).toEqual(['timer 94']);
    expect(chain.currentWatermark?.()).toBe(94);
    expect(chain.processBatch(0, 'p0', [reading(iso(106))]).map((r) => r.value)).toEqual([
      'timer 100',
    ]);
  });

  it('takes the minimum over channels, so a slow partition holds event time back', () => {
    const { chain } = chainWith();
    // A channel counts from its first batch, even an empty one (the watermark never goes back).
    expect(chain.processBatch(0, 'p1', [])).toEqual([]);
    expect(chain.processBatch(0, 'p0', [reading(iso(50))]).map((r) => r.value)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(-Infinity);
    expect(chain.processBatch(0, 'p1', [reading(iso(10))]).map((r) => r.value)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(4);
    // p1 catches up: min(50, 60) - 6 = 44 fires the timer at 10; 50 waits.
    expect(chain.processBatch(0, 'p1', [reading(iso(60))]).map((r) => r.value)).toEqual([
      'timer 10',
    ]);
    expect(chain.currentWatermark?.()).toBe(44);
  });

  it('lets an idle channel stop holding the watermark back after idleTimeoutMs (tick)', () => {
    const { chain } = chainWith(1000);
    chain.processBatch(0, 'p0', [reading(iso(10))]);
    chain.processBatch(0, 'p1', [reading(iso(500))]);
    expect(chain.currentWatermark?.()).toBe(4);
    expect(chain.tick(Date.now())).toEqual([]);
    // Both silent for the timeout: every channel idle holds the watermark where it is.
    expect(chain.tick(Date.now() + 5_000)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(4);
    // p1 speaks again; p0 stays idle, so p1 alone sets the watermark.
    const out = chain.processBatch(0, 'p1', [reading(iso(600))]);
    expect(chain.tick(Date.now() + 1_000)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(594);
    expect(out.map((r) => r.value)).toEqual(['timer 10', 'timer 500']);
  });

  it('dead-letters records whose timestamp cannot be parsed, and goes on', () => {
    const { chain, deadLetters } = chainWith();
    const out = chain.processBatch(0, 'p0', [reading('yesterday'), reading(iso(100))]);
    expect(out.map((r) => r.value)).toEqual([]);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]!.error).toMatchObject({ code: 'TIMESTAMP_INVALID' });
    expect(chain.finish().map((r) => r.value)).toEqual(['timer 100']);
  });

  it('the watermark of a union is the minimum of its inputs', () => {
    const { chain } = compileChain(
      (a, b) =>
        (a as DataStream<Reading>)
          .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
          .union(
            (b as DataStream<Reading>).assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 }),
          )
          .keyBy(() => 'k')
          .process(alarm) as DataStream<unknown>,
      { inputs: 2 },
    );
    expect(chain.processBatch(0, 'a', [reading('', 10)])).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(-Infinity);
    expect(chain.processBatch(1, 'b', [reading('', 30)]).map((r) => r.value)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(9);
    expect(chain.processBatch(0, 'a', [reading('', 40)]).map((r) => r.value)).toEqual(['timer 10']);
    expect(chain.currentWatermark?.()).toBe(29);
  });

  it('a union stops waiting for an input whose channels all went idle, and waits again when it speaks', () => {
    const strategy = { maxOutOfOrdernessMs: 0, idleTimeoutMs: 1000 };
    const { chain } = compileChain(
      (a, b) =>
        (a as DataStream<Reading>)
          .assignTimestampsAndWatermarks(strategy)
          .union((b as DataStream<Reading>).assignTimestampsAndWatermarks(strategy))
          .keyBy(() => 'k')
          .process(alarm) as DataStream<unknown>,
      { inputs: 2 },
    );
    chain.processBatch(0, 'a', [reading('', 50)]);
    chain.processBatch(1, 'b', [reading('', 5)]);
    expect(chain.currentWatermark?.()).toBe(4);
    // Both inputs silent past the timeout: every input idle, nothing advances.
    expect(chain.tick(Date.now() + 5_000)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(4);
    // Input 0 speaks again; input 1 stays idle, so input 0 alone drives event time.
    const out = chain.processBatch(0, 'a', [reading('', 100)]);
    expect(out.map((r) => r.value)).toEqual(['timer 5', 'timer 50']);
    expect(chain.currentWatermark?.()).toBe(99);
    // Input 1 comes back: the union waits for it again (its watermark, 59, is behind).
    chain.processBatch(1, 'b', [reading('', 60)]);
    expect(chain.processBatch(0, 'a', [reading('', 200)]).map((r) => r.value)).toEqual([]);
    expect(chain.currentWatermark?.()).toBe(99);
    expect(chain.processBatch(1, 'b', [reading('', 150)]).map((r) => r.value)).toEqual([
      'timer 60',
      'timer 100',
    ]);
    expect(chain.currentWatermark?.()).toBe(149);
    const snapshot = JSON.parse(JSON.stringify(chain.snapshotState())) as {
      operators: Record<string, { kind: string }>;
    };
    expect(Object.values(snapshot.operators).map((o) => o.kind)).toContain('union');
  });

  describe('channels count from their assignment, idleness from creation (Flink per-split watermarks)', () => {
    /** A chain reading the fake clock `clock.now`. */
    function timed(clock: { now: number }, idleTimeoutMs?: number, inputs = 1) {
      const strategy = {
        maxOutOfOrdernessMs: 0,
        ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
      };
      return compileChain(
        (...streams) => {
          const timedStreams = streams.map((s) =>
            (s as DataStream<Reading>).assignTimestampsAndWatermarks(strategy),
          );
          return timedStreams[0]!
            .union(...timedStreams.slice(1))
            .keyBy(() => 'k')
            .process(alarm) as DataStream<unknown>;
        },
        { inputs, clock: () => clock.now },
      );
    }
    const values = (out: StreamRecord[]) => out.map((r) => r.value);

    it('an assigned partition that has not delivered yet holds event time back', () => {
      const { chain } = timed({ now: 0 });
      expect(chain.assignChannels!(0, ['p0', 'p1', 'p2'])).toEqual([]);
      // p0 delivers first: p1 and p2 are at -inf until they deliver.
      expect(values(chain.processBatch(0, 'p0', [reading('', 50)]))).toEqual([]);
      expect(chain.currentWatermark?.()).toBe(-Infinity);
      expect(values(chain.processBatch(0, 'p1', [reading('', 10)]))).toEqual([]);
      expect(chain.currentWatermark?.()).toBe(-Infinity);
      expect(values(chain.processBatch(0, 'p2', [reading('', 30)]))).toEqual([]);
      expect(chain.currentWatermark?.()).toBe(9);
      expect(values(chain.processBatch(0, 'p1', [reading('', 40)]))).toEqual(['timer 10']);
      expect(chain.currentWatermark?.()).toBe(29);
    });

    it('a revoked partition stops holding event time back; one assigned later holds it again', () => {
      const { chain } = timed({ now: 0 });
      chain.assignChannels!(0, ['p0', 'p1']);
      chain.processBatch(0, 'p0', [reading('', 50)]);
      chain.processBatch(0, 'p1', [reading('', 10)]);
      expect(chain.currentWatermark?.()).toBe(9);
      // p1 moves to another consumer: p0 alone sets event time, at once.
      expect(values(chain.assignChannels!(0, ['p0']))).toEqual(['timer 10']);
      expect(chain.currentWatermark?.()).toBe(49);
      // p2 arrives (rebalance): nothing advances until it delivers; the watermark never goes back.
      chain.assignChannels!(0, ['p0', 'p2']);
      expect(values(chain.processBatch(0, 'p0', [reading('', 100)]))).toEqual([]);
      expect(chain.currentWatermark?.()).toBe(49);
      expect(values(chain.processBatch(0, 'p2', [reading('', 80)]))).toEqual(['timer 50']);
      expect(chain.currentWatermark?.()).toBe(79);
    });

    it('an assigned partition that never delivers goes idle idleTimeoutMs after its assignment', () => {
      const clock = { now: 10_000 };
      const { chain } = timed(clock, 1_000);
      chain.assignChannels!(0, ['p0', 'p1']);
      clock.now += 400;
      chain.processBatch(0, 'p0', [reading('', 50), reading('', 60)]);
      clock.now += 599;
      expect(chain.tick(clock.now)).toEqual([]);
      expect(chain.currentWatermark?.()).toBe(-Infinity);
      // 1 s since p1 was assigned (p0 delivered 600 ms ago and still counts).
      clock.now += 1;
      expect(values(chain.tick(clock.now))).toEqual(['timer 50']);
      expect(chain.currentWatermark?.()).toBe(59);
    });

    it('a union with an input that never delivers anything fires once that input has been quiet for idleTimeoutMs since creation', () => {
      const clock = { now: 5_000 };
      // No assignment at all (a chain driven without one): the silent input has no channel.
      const { chain } = timed(clock, 1_000, 2);
      const out: unknown[] = [];
      for (let i = 1; i <= 10; i++) {
        clock.now += 200;
        out.push(...values(chain.processBatch(0, 'busy', [reading('', i * 100)])));
        out.push(...values(chain.tick(clock.now)));
        if (i === 4) expect(out).toEqual([]); // 800 ms after creation: input 1 still counts
      }
      // From 1 s after creation input 1 is idle: the busy input alone drives event time.
      expect(out).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900].map((t) => `timer ${t}`));
      expect(chain.currentWatermark?.()).toBe(999);
    });

    it('a restored channel times its idleness from the restore, not from the checkpoint', () => {
      const clock = { now: 0 };
      const first = timed(clock, 1_000);
      first.chain.assignChannels!(0, ['p0', 'p1']);
      first.chain.processBatch(0, 'p0', [reading('', 50)]);
      first.chain.processBatch(0, 'p1', [reading('', 10)]);
      const state = JSON.parse(JSON.stringify(first.chain.snapshotState())) as JsonValue;
      clock.now = 60_000; // restarted a minute later
      const { chain } = timed(clock, 1_000);
      chain.restoreState(state);
      chain.assignChannels!(0, ['p0', 'p1']);
      clock.now += 500;
      expect(values(chain.processBatch(0, 'p0', [reading('', 70)]))).toEqual([]);
      // p1 restored as silent since 0 would be idle at once; it counts for 1 s from the restore.
      expect(chain.tick(60_999)).toEqual([]);
      expect(values(chain.tick(61_000))).toEqual(['timer 10', 'timer 50']);
      expect(chain.currentWatermark?.()).toBe(69);
    });
  });
});
