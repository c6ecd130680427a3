import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import type { BufferConsumer, ConsumerOptions, TopicPartition } from './buffer.js';
import { MemoryBuffer } from './memory-buffer.js';
import { defineMessageType } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { OperatorChain } from './operator-chain.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Source } from './source.js';
import { PartitionStateShards } from './state-shards.js';
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

/**
 * A store whose `failOn`-th save and load fail: for good (a worker dying in the middle of a
 * checkpoint) or once, as a transient error (a broker between partition leaders).
 */
class CrashingStore implements StateStore {
  readonly kind = 'crashing';
  saves = 0;
  loads = 0;
  constructor(
    private readonly inner: StateStore,
    private readonly failOn: number,
    private readonly transient = false,
  ) {}
  private failure(): Error {
    return this.transient
      ? Object.assign(new Error('not the leader for that topic-partition'), { retryable: true })
      : Object.assign(new Error('worker killed mid-checkpoint'), { retryable: false });
  }
  async load(pipeline: string, stage: string, partition: number) {
    if (++this.loads === 2) throw this.failure();
    return this.inner.load(pipeline, stage, partition);
  }
  async save(pipeline: string, stage: string, partition: number, shard: StateShard) {
    if (++this.saves === this.failOn) throw this.failure();
    return this.inner.save(pipeline, stage, partition, shard);
  }
}

/**
 * A memory buffer whose consumers report nothing assigned while `rebalancing` is on, as
 * Kafka's consumer does between the start of a rebalance and its next assignment.
 */
class RebalancingBuffer extends MemoryBuffer {
  rebalancing = false;
  emptyAssignments = 0;
  override async consumer(options: ConsumerOptions): Promise<BufferConsumer> {
    const inner = await super.consumer(options);
    const assignment = (): TopicPartition[] => {
      if (!this.rebalancing) return inner.assignment();
      this.emptyAssignments++;
      return [];
    };
    return new Proxy(inner, {
      get: (target, property) => {
        if (property === 'assignment') return assignment;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }
}

const fast = { logger: silentLogger, pollTimeoutMs: 10, tickIntervalMs: 20, batchSize: 25 };

describe('partition state shards', () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function takeover(leave: 'stop' | 'crash' | 'transient') {
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
        stateStore: leave === 'stop' ? store : new CrashingStore(store, 25, leave === 'transient'),
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
    // Files of each input partition's shard, none for the stateless stages.
    const files = await readdir(join(dir, 'shards', 'totals.state'));
    expect(new Set(files.map((f) => f.split('.')[0]))).toEqual(
      new Set(['partition-0', 'partition-1', 'partition-2', 'partition-3']),
    );
  });

  it('a worker dying in the middle of a checkpoint loses no count and counts nothing twice', async () => {
    const { summaryA, summaryB, sink } = await takeover('crash');
    expect(summaryA).toContain('worker killed mid-checkpoint');
    expect(summaryB.status).toBe('finished');
    expect(sink.totals).toEqual(expectedTotals());
  });

  it('a store load and save that fail once (transient) are retried: no count lost or doubled', async () => {
    const { summaryA, summaryB, sink } = await takeover('transient');
    expect(summaryA).toBe('finished');
    expect(summaryB.status).toBe('finished');
    expect(sink.totals).toEqual(expectedTotals());
  });

  it('a rebalance that gives a worker back its partitions keeps what it processed since its last checkpoint', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cf-shards-'));
    const buffer = new RebalancingBuffer({ maxRecordsPerPartition: 400 });
    const sink = new TotalsSink();
    let reduced = 0;
    const p = pipeline(buffer, sink, () => {
      reduced++;
      if (reduced === 1500) buffer.rebalancing = true;
      if (reduced === 2500) buffer.rebalancing = false;
    });
    const out = p.run({ ...fast, mode: 'worker', stage: 'out' });
    const totals = p.run({
      ...fast,
      mode: 'worker',
      stage: 'totals',
      checkpointIntervalMs: 5,
      stateStore: new FileStateStore(dir),
    });
    await p.run({ ...fast, mode: 'worker', stage: 'tallies' });
    expect((await totals).status).toBe('finished');
    await out;
    await buffer.close();
    expect(buffer.emptyAssignments).toBeGreaterThan(5);
    expect(sink.totals).toEqual(expectedTotals());
  });

  it('the file store loads the last whole shard with the deltas after it, and a whole save removes what it replaces', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cf-shards-'));
    const store = new FileStateStore(dir);
    const save = (version: number, changedKeys?: string[]) =>
      store.save('p', 's', 0, {
        version,
        takenAt: 0,
        positions: { 'topic/0': String(version) },
        state: version,
        ...(changedKeys === undefined ? {} : { changedKeys }),
      });
    await save(1);
    await save(2, ['a']);
    await save(3, []);
    const loaded = await store.load('p', 's', 0);
    expect(loaded?.version).toBe(1);
    expect(loaded?.deltas?.map((d) => [d.version, d.changedKeys, d.state])).toEqual([
      [2, ['a'], 2],
      [3, [], 3],
    ]);
    // A delta over a version already stored is fenced like a whole shard.
    await expect(save(3, ['b'])).rejects.toBeInstanceOf(StateFencedError);
    await save(4);
    expect(await readdir(join(dir, 'p', 's.state'))).toEqual(['partition-0.4.json']);
    expect(await store.load('p', 's', 0)).toEqual({
      version: 4,
      takenAt: 0,
      positions: { 'topic/0': '4' },
      state: 4,
    });
  });

  it('the file store refuses a delta whose predecessor is missing (CHECKPOINT_CORRUPT), and reads the one-file layout of earlier versions', async () => {
    dir = await mkdtemp(join(tmpdir(), 'cf-shards-'));
    const store = new FileStateStore(dir);
    const shardDir = join(dir, 'p', 's.state');
    await mkdir(shardDir, { recursive: true });
    const shard = { version: 7, takenAt: 0, positions: { 'topic/0': '7' }, state: 'old' };
    await writeFile(join(shardDir, 'partition-0.json'), JSON.stringify(shard));
    expect(await store.load('p', 's', 0)).toEqual(shard);
    await store.save('p', 's', 0, { ...shard, version: 8, state: 'new', changedKeys: [] });
    await writeFile(
      join(shardDir, 'partition-0.10.delta.json'),
      JSON.stringify({ ...shard, version: 10, changedKeys: [] }),
    );
    await expect(store.load('p', 's', 0)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
      message: expect.stringMatching(/version 9 is missing/),
    });
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

describe('PartitionStateShards positions', () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  /** A chain holding one opaque value: enough to load, save and compare shards. */
  const chain = (): OperatorChain => ({
    processBatch: () => [],
    tick: () => [],
    finish: () => [],
    snapshotState: () => 'state',
    restoreState: () => undefined,
    dropState: () => undefined,
  });

  it('the positions saved with a shard are what its state reflects, whatever the consumer reports', async () => {
    // The last owner saved version 1 (state through offset 100 of topic/0) and died before it
    // committed its offsets, so this worker's consumer starts at the older commit and skips
    // up to 100; and a consumer forgets a partition's position when the group revokes it,
    // before the worker's last save of that shard. Positions behind the state would make the
    // next owner count those records again.
    dir = await mkdtemp(join(tmpdir(), 'cf-shards-positions-'));
    const store = new FileStateStore(dir);
    await store.save('p', 's', 0, {
      version: 1,
      takenAt: 0,
      positions: { 'topic/0': '100' },
      state: 'state',
    });
    const shards = new PartitionStateShards(store, 'p', 's', 2, chain(), silentLogger);
    await shards.reassign(new Set([0]));
    expect(shards.skip.stored('topic/0', '99')).toBe(true);
    const saved = async () => (await store.load('p', 's', 0))?.positions;
    const save = () =>
      shards.save(
        Object.fromEntries(
          shards.reflectedPositions().map((p) => [`${p.topic}/${p.partition}`, p.offset]),
        ),
      );
    await save(); // before the consumer's first fetch
    expect(await saved()).toEqual({ 'topic/0': '100' });
    shards.observe([{ topic: 'topic', partition: 0, offset: '50' }]); // still skipping
    await save();
    expect(await saved()).toEqual({ 'topic/0': '100' });
    shards.observe([
      { topic: 'topic', partition: 0, offset: '140' },
      { topic: 'other', partition: 0, offset: '7' },
      { topic: 'topic', partition: 1, offset: '9' }, // not owned
    ]);
    shards.observe([]); // revoked: the consumer forgot it; the state still holds up to 140
    await save();
    expect(await saved()).toEqual({ 'topic/0': '140', 'other/0': '7' });
    await shards.reassign(new Set([1]));
    expect(shards.reflectedPositions()).toEqual([]);
  });
});
