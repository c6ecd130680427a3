import { describe, expect, it } from 'vitest';
import { compileChain } from './chain-harness.js';
import type { DataStream, KeyedProcessFunction } from './datastream.js';
import type { StreamRecord } from './record.js';

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
});
