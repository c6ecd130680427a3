import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import { MemoryBuffer } from './memory-buffer.js';
import { defineMessageType } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Source } from './source.js';
import {
  FileStateStore,
  StateFencedError,
  type StateShard,
  type StateStore,
} from './state-store.js';

/*
 * Keyed state that follows its partition: two workers of one keyed stage share a buffer and
 * a state store; one leaves mid-run (stops, or crashes mid-checkpoint) and the other takes
 * its partitions. The per-key totals are checked against a count computed here from the
 * input, not by the runtime.
 */

const KEYS = 40;
const RECORDS = 6000;
const Tally = defineMessageType('test.Tally', 1, z.object({ k: z.string(), c: z.number() }));
type Tally = z.output<typeof Tally.schema>;

const keyOf = (n: number) => `key-${n % KEYS}`;

/** 1..RECORDS as `{ k, c: 1 }`, the buffer key being the keyBy key (co-partitioned). */
class TallySource implements Source<Tally> {
  next = 1;
  async poll(max: number): Promise<StreamRecord<Tally>[] | null> {
    if (this.next > RECORDS) return null;
    const out: StreamRecord<Tally>[] = [];
    for (const end = Math.min(RECORDS, this.next + max - 1); this.next <= end; this.next++) {
      const k = keyOf(this.next);
      out.push({ key: k, value: { k, c: 1 }, timestamp: this.next });
    }
    return out;
  }
  position(): JsonValue {
    return this.next;
  }
  restore(position: JsonValue): void {
    this.next = position as number;
  }
  async close(): Promise<void> {}
}

/** The latest running total seen per key (outputs may repeat: at-least-once). */
class TotalsSink {
  readonly totals = new Map<string, number>();
  write(batch: readonly StreamRecord<Tally>[]) {
    for (const r of batch)
      this.totals.set(r.value.k, Math.max(this.totals.get(r.value.k) ?? 0, r.value.c));
  }
  async flush() {}
  async close() {}
}

function pipeline(buffer: MemoryBuffer, sink: TotalsSink, onRecord: () => void) {
  const input = defineInput({
    name: 'tallies',
    description: 'tallies',
    configSchema: z.object({}),
    outputType: Tally,
    createSource: () => new TallySource(),
  }).create('tallies');
  const totals = defineTransform({
    name: 'totals',
    description: 'running total per key',
    configSchema: z.object({}),
    inputTypes: [Tally] as const,
    outputType: Tally,
    transform: ([s]) =>
      s
        .keyBy((t) => t.k)
        .reduce((a, b) => {
          onRecord();
          return { k: a.k, c: a.c + b.c };
        }),
  }).create('totals');
  const output = defineOutput({
    name: 'totals-sink',
    description: 'keeps totals',
    configSchema: z.object({}),
    inputTypes: [Tally] as const,
    createSink: () => sink,
  }).create('out');
  return new PipelineBuilder('shards')
    .append(input)
    .append(totals)
    .append(output)
    .setBuffer(buffer)
    .setStageOptions('tallies', { partitions: 4 })
    .build();
}

/** Expected totals, counted from the input alone. */
function expectedTotals(): Map<string, number> {
  const totals = new Map<string, number>();
  for (let n = 1; n <= RECORDS; n++) totals.set(keyOf(n), (totals.get(keyOf(n)) ?? 0) + 1);
  return totals;
}

/** A store that fails its `failOn`-th save (a worker dying in the middle of a checkpoint). */
class CrashingStore implements StateStore {
  readonly kind = 'crashing';
  saves = 0;
  constructor(
    private readonly inner: StateStore,
    private readonly failOn: number,
  ) {}
  load(pipeline: string, stage: string, partition: number) {
    return this.inner.load(pipeline, stage, partition);
  }
  async save(pipeline: string, stage: string, partition: number, shard: StateShard) {
    if (++this.saves === this.failOn) throw new Error('worker killed mid-checkpoint');
    return this.inner.save(pipeline, stage, partition, shard);
  }
}

const fast = { logger: silentLogger, pollTimeoutMs: 10, tickIntervalMs: 20, batchSize: 25 };

describe('partition state shards', () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function takeover(leave: 'stop' | 'crash') {
    dir = await mkdtemp(join(tmpdir(), 'cf-shards-'));
    const buffer = new MemoryBuffer({ maxRecordsPerPartition: 400 });
    const sink = new TotalsSink();
    const stopA = new AbortController();
    let reduced = 0;
    const p = pipeline(buffer, sink, () => {
      if (++reduced === 1500 && leave === 'stop') stopA.abort();
    });
    const store = new FileStateStore(dir);
    const out = p.run({ ...fast, mode: 'worker', stage: 'out' });
    const a = p
      .run({
        ...fast,
        mode: 'worker',
        stage: 'totals',
        instance: 'a',
        signal: stopA.signal,
        checkpointIntervalMs: 5,
        stateStore: leave === 'crash' ? new CrashingStore(store, 25) : store,
      })
      .then(
        (s) => s.status,
        (error: unknown) => (error as Error).message,
      );
    const b = p.run({
      ...fast,
      mode: 'worker',
      stage: 'totals',
      instance: 'b',
      checkpointIntervalMs: 5,
      stateStore: store,
    });
    const deadline = Date.now() + 10_000;
    while (buffer.groupSize('totals') < 2) {
      if (Date.now() > deadline) throw new Error('workers did not join within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    await p.run({ ...fast, mode: 'worker', stage: 'tallies' });
    const summaryA = await a;
    const summaryB = await b;
    await out;
    await buffer.close();
    return { summaryA, summaryB, sink };
  }

  it('a worker that stops hands its partitions’ keyed state to the one that takes them over', async () => {
    const { summaryA, summaryB, sink } = await takeover('stop');
    expect(summaryA).toBe('stopped');
    expect(summaryB.status).toBe('finished');
    expect(sink.totals).toEqual(expectedTotals());
    // One shard per input partition, none for the stateless stages.
    expect((await readdir(join(dir, 'shards', 'totals.state'))).sort()).toEqual([
      'partition-0.json',
      'partition-1.json',
      'partition-2.json',
      'partition-3.json',
    ]);
  });

  it('a worker dying in the middle of a checkpoint loses no count and counts nothing twice', async () => {
    const { summaryA, summaryB, sink } = await takeover('crash');
    expect(summaryA).toContain('worker killed mid-checkpoint');
    expect(summaryB.status).toBe('finished');
    expect(sink.totals).toEqual(expectedTotals());
  });

  it('a save over a version another worker replaced is refused (fencing)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cf-shards-'));
    const store = new FileStateStore(dir);
    const shard = (version: number): StateShard => ({
      version,
      takenAt: 0,
      positions: { 'topic/0': String(version) },
      state: null,
    });
    await store.save('p', 's', 0, shard(1));
    await store.save('p', 's', 0, shard(2));
    await expect(store.save('p', 's', 0, shard(2))).rejects.toBeInstanceOf(StateFencedError);
    await expect(store.save('p', 's', 0, shard(4))).rejects.toThrow(/version 2, not 3/);
    expect((await store.load('p', 's', 0))?.positions).toEqual({ 'topic/0': '2' });
    expect(await store.load('p', 's', 1)).toBeUndefined();
  });
});
