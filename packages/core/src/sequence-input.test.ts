import { describe, expect, it } from 'vitest';
import type { StreamRecord } from './record.js';
import { sequenceInput } from './sequence-input.js';
import { stageContext } from './chain-harness.js';
import type { Source } from './source.js';

const signal = new AbortController().signal;

async function drain(source: Source<number>, batch: number): Promise<StreamRecord<number>[]> {
  const out: StreamRecord<number>[] = [];
  for (;;) {
    const records = await source.poll(batch, signal);
    if (records === null) return out;
    out.push(...records);
  }
}

describe('sequenceInput', () => {
  it('emits from..to inclusive by step, then ends', async () => {
    const stage = sequenceInput.create('seq', { from: 3, to: 20, step: 4, timestamps: 'value' });
    const source = await stage.createSource(stageContext('seq'));
    const out = await drain(source, 2);
    expect(out.map((r) => r.value)).toEqual([3, 7, 11, 15, 19]);
    expect(out.map((r) => r.timestamp)).toEqual([3, 7, 11, 15, 19]);
    expect(await source.poll(10, signal)).toBeNull();
  });

  it('counts down with a negative step, and computes values without float drift', async () => {
    const down = await sequenceInput
      .create('d', { from: 1, to: 0, step: -0.1 })
      .createSource(stageContext());
    const values = (await drain(down, 100)).map((r) => r.value);
    expect(values).toHaveLength(11);
    expect(values[10]).toBeCloseTo(0, 12);
    expect(values[3]).toBe(1 + 3 * -0.1);
  });

  it('resumes exactly after restore(position)', async () => {
    const stage = sequenceInput.create('seq', { from: 0, to: 99 });
    const first = await stage.createSource(stageContext());
    await first.poll(37, signal);
    const position = JSON.parse(JSON.stringify(first.position()));
    const second = await stage.createSource(stageContext());
    await second.restore(position);
    const rest = await drain(second, 10);
    expect(rest.map((r) => r.value)).toEqual(Array.from({ length: 63 }, (_, i) => 37 + i));
  });

  it('is unbounded without `to`, and ratePerSecond limits how many records come out', async () => {
    const source = await sequenceInput
      .create('r', { ratePerSecond: 200 })
      .createSource(stageContext());
    const started = Date.now();
    let count = 0;
    while (Date.now() - started < 300) count += (await source.poll(1000, signal))!.length;
    const elapsed = Date.now() - started;
    // At most one record per 5 ms, plus the first one immediately.
    expect(count).toBeLessThanOrEqual(Math.floor((elapsed * 200) / 1000) + 1);
    expect(count).toBeGreaterThan(20);
  });

  it('reports every config problem at once', () => {
    expect(() => sequenceInput.create('bad', { step: 0, ratePerSecond: -1 } as never)).toThrow(
      /step must be a finite number other than 0[\s\S]*ratePerSecond/,
    );
  });
});
