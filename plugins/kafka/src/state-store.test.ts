// The Kafka state store (`stateStore: 'buffer'` on the Kafka buffer) against the real broker:
// each KafkaBuffer is another worker; topics are `cftest-state-<run>-….<stage>.state`.
import { randomBytes } from 'node:crypto';
import {
  defineInput,
  defineMessageType,
  defineOutput,
  defineTransform,
  PipelineBuilder,
  silentLogger,
  StateFencedError,
  z,
  type JsonValue,
  type Source,
  type StateShard,
  type StateWrite,
  type StreamRecord,
} from '@codefeedr/core';
import { waitFor } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import { kafkaBuffer } from './kafka-buffer.js';
import { KafkaStateShardTooLargeError } from './errors.js';
import { KAFKA_STATE_SHARD_MAX_BYTES, type KafkaStateStore } from './state-store.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );
const run = randomBytes(4).toString('hex');
const buffers: KafkaBuffer[] = [];
const topics = new Set<string>();
let pipelines = 0;

afterAll(async () => {
  const admin = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
  buffers.push(admin);
  for (const topic of topics) await admin.admin.deleteTopic(topic).catch(() => undefined);
  for (const buffer of buffers) await buffer.close();
});

/** A worker's store: a buffer of its own, as each worker process has. */
async function worker(): Promise<KafkaStateStore> {
  const buffer = new KafkaBuffer(
    kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', transactionalIdPrefix: run }),
  );
  buffers.push(buffer);
  return (await buffer.stateStore()) as KafkaStateStore;
}

/** A pipeline name of this run; its state topics are deleted at the end. */
function pipeline(...stages: string[]): string {
  const name = `cftest-state-${run}-${++pipelines}`;
  for (const stage of ['stage', ...stages]) topics.add(`${name}.${stage}.state`);
  return name;
}

function shard(version: number, state: JsonValue, partition = 0): StateShard {
  return {
    version,
    takenAt: 1_700_000_000_000 + version,
    positions: { [`in/${partition}`]: String(version * 10) },
    state,
  };
}

describe('KafkaStateStore', () => {
  it('has nothing for a partition never saved', async () => {
    const store = await worker();
    const p = pipeline();
    expect(await store.load(p, 'stage', 0)).toBeUndefined();
    await store.save(p, 'stage', 0, shard(1, 'only 0'));
    expect(await store.load(p, 'stage', 3)).toBeUndefined();
  });

  it('returns the last shard saved, with its positions and state, to another worker', async () => {
    const a = await worker();
    const p = pipeline();
    const state = { operators: { '3': { kind: 'keyedReduce', state: [['ключ', { n: 1.5 }]] } } };
    expect(await a.load(p, 'stage', 2)).toBeUndefined();
    await a.save(p, 'stage', 2, shard(1, state, 2));
    await a.save(p, 'stage', 2, shard(2, { ...state, v: 2 }, 2));
    const b = await worker();
    const loaded = await b.load(p, 'stage', 2);
    expect(loaded).toEqual(shard(2, { ...state, v: 2 }, 2));
    expect(loaded?.positions).toEqual({ 'in/2': '20' });
  });

  it('refuses a save that does not follow the stored version', async () => {
    const store = await worker();
    const p = pipeline();
    await expect(store.save(p, 'stage', 0, shard(2, null))).rejects.toBeInstanceOf(
      StateFencedError,
    );
    await store.save(p, 'stage', 0, shard(1, 'first'));
    await expect(store.save(p, 'stage', 0, shard(1, 'again'))).rejects.toBeInstanceOf(
      StateFencedError,
    );
    await expect(store.save(p, 'stage', 0, shard(3, 'skips 2'))).rejects.toThrow(
      /version 1, not 2/,
    );
    expect((await (await worker()).load(p, 'stage', 0))?.state).toBe('first');
  });

  it('fences the first worker once a second one loads the partition', async () => {
    const p = pipeline();
    const a = await worker();
    const b = await worker();
    expect(await a.load(p, 'stage', 1)).toBeUndefined();
    await a.save(p, 'stage', 1, shard(1, 'a1', 1));
    // The partition moves to b, which loads a's shard. a has not noticed: its version check
    // passes (it wrote version 1), so only Kafka's producer fencing can refuse its save.
    expect((await b.load(p, 'stage', 1))?.state).toBe('a1');
    const refused = a.save(p, 'stage', 1, shard(2, 'a2', 1));
    await expect(refused).rejects.toBeInstanceOf(StateFencedError);
    await expect(refused).rejects.toMatchObject({ code: 'STATE_FENCED' });
    // Fenced for good: a's next checkpoint is refused too, without taking the partition back.
    await expect(a.save(p, 'stage', 1, shard(2, 'a2 again', 1))).rejects.toBeInstanceOf(
      StateFencedError,
    );
    await b.save(p, 'stage', 1, shard(2, 'b2', 1));
    expect(await (await worker()).load(p, 'stage', 1)).toEqual(shard(2, 'b2', 1));
  });

  it('exactly-once: a new owner fences the last writer, whose open transaction then never commits', async () => {
    const p = pipeline();
    const open = async (name: string) => {
      const buffer = new KafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', transactionalIdPrefix: run }),
      );
      buffers.push(buffer);
      const store = (await buffer.stateStore()) as KafkaStateStore;
      const producer = await buffer.producer({ clientId: `${p}-${name}`, transactional: true });
      const commit = async (...writes: StateWrite[]) => {
        const tx = await producer.beginTransaction!();
        for (const w of writes) await tx.send(w.topic, w.messages);
        await tx.commit();
      };
      return { store, producer, commit, writer: `${p}-${name}` };
    };
    const a = await open('a');
    const first = await a.store.transactions.load(p, 'stage', 0, a.writer);
    expect(first.shard).toBeUndefined();
    await a.commit(first.claim);
    await a.commit(await a.store.transactions.write(p, 'stage', 0, shard(1, 'v1'), a.writer));
    a.store.transactions.committed(p, 'stage', 0, shard(1, 'v1'));
    // Version 2 is sent but not committed: a worker killed mid-transaction, or one that has not
    // yet noticed losing the partition.
    const v2 = { ...shard(2, 'v2'), changedKeys: ['k'] };
    const pending = await a.producer.beginTransaction!();
    const write2 = await a.store.transactions.write(p, 'stage', 0, v2, a.writer);
    await pending.send(write2.topic, write2.messages);

    const b = await open('b');
    const taken = await b.store.transactions.load(p, 'stage', 0, b.writer);
    expect(taken.shard).toEqual(shard(1, 'v1'));
    await expect(pending.commit()).rejects.toMatchObject({ code: 'TRANSACTION_FENCED' });
    await b.commit(taken.claim);
    // b's delta follows what it loaded; the next owner gets both.
    const v2b = { ...shard(2, 'v2 by b'), changedKeys: ['k'] };
    await b.commit(await b.store.transactions.write(p, 'stage', 0, v2b, b.writer));
    b.store.transactions.committed(p, 'stage', 0, v2b);
    const c = await open('c');
    expect((await c.store.transactions.load(p, 'stage', 0, c.writer)).shard).toEqual({
      ...shard(1, 'v1'),
      deltas: [v2b],
    });
  });

  it('exactly-once: a partition assigned back to its last writer right after a commit loads that commit', async () => {
    // A commit returns before Kafka writes its markers; a read right after it could stop at a
    // last stable offset before the commit and hand back the state before it (the worker then
    // reprocessed those records and fired their windows twice). Commit, then load at once, in
    // a loop: every load must return the version just committed.
    const p = pipeline();
    const buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing', transactionalIdPrefix: run }),
    );
    buffers.push(buffer);
    const store = (await buffer.stateStore()) as KafkaStateStore;
    const writer = `${p}-w`;
    const producer = await buffer.producer({ clientId: writer, transactional: true });
    const commit = async (...writes: StateWrite[]) => {
      const tx = await producer.beginTransaction!();
      for (const w of writes) await tx.send(w.topic, w.messages);
      await tx.commit();
    };
    let loaded = await store.transactions.load(p, 'stage', 0, writer);
    await commit(loaded.claim);
    for (let version = 1; version <= 12; version++) {
      const next =
        version === 1 ? shard(1, 'v1') : { ...shard(version, `v${version}`), changedKeys: ['k'] };
      await commit(await store.transactions.write(p, 'stage', 0, next, writer));
      store.transactions.committed(p, 'stage', 0, next);
      // Revoked and assigned back to the same worker: it loads again as the same writer.
      loaded = await store.transactions.load(p, 'stage', 0, writer);
      const got = loaded.shard?.deltas?.at(-1) ?? loaded.shard;
      expect(got?.version).toBe(version);
      expect(got?.state).toBe(`v${version}`);
      await commit(loaded.claim);
    }
  });

  it('round-trips a shard of about 5 MB', async () => {
    const store = await worker();
    const p = pipeline();
    const pairs = Array.from(
      { length: 60_000 },
      (_, i) => [`key-${i}`, { n: i, pad: 'x'.repeat(64) }] as [string, JsonValue],
    );
    const big = shard(1, { operators: { '1': { kind: 'keyedReduce', state: pairs } } });
    expect(JSON.stringify(big).length).toBeGreaterThan(5_000_000);
    await store.save(p, 'stage', 0, big);
    expect(await (await worker()).load(p, 'stage', 0)).toEqual(big);
  });

  it('refuses a shard over the limit with KAFKA_STATE_SHARD_TOO_LARGE and stores nothing', async () => {
    const store = await worker();
    const p = pipeline();
    const huge = shard(1, 'x'.repeat(KAFKA_STATE_SHARD_MAX_BYTES));
    const refused = store.save(p, 'stage', 0, huge);
    await expect(refused).rejects.toBeInstanceOf(KafkaStateShardTooLargeError);
    await expect(refused).rejects.toMatchObject({ code: 'KAFKA_STATE_SHARD_TOO_LARGE' });
    expect(await (await worker()).load(p, 'stage', 0)).toBeUndefined();
  });

  it('keeps pipelines, stages and partitions apart', async () => {
    const store = await worker();
    const [p, q] = [pipeline('one', 'two'), pipeline('one', 'two')];
    await store.save(p, 'one', 0, shard(1, 'p-one-0'));
    await store.save(p, 'one', 3, shard(1, 'p-one-3', 3));
    await store.save(p, 'one', 1, shard(1, 'p-one-1', 1));
    await store.save(p, 'two', 0, shard(1, 'p-two-0'));
    await store.save(q, 'one', 0, shard(1, 'q-one-0'));
    const other = await worker();
    expect((await other.load(p, 'one', 0))?.state).toBe('p-one-0');
    expect((await other.load(p, 'one', 1))?.state).toBe('p-one-1');
    expect(await other.load(p, 'one', 2)).toBeUndefined();
    expect((await other.load(p, 'one', 3))?.state).toBe('p-one-3');
    expect((await other.load(p, 'two', 0))?.state).toBe('p-two-0');
    expect(await other.load(p, 'two', 1)).toBeUndefined();
    expect((await other.load(q, 'one', 0))?.state).toBe('q-one-0');
    expect(await other.load(q, 'two', 0)).toBeUndefined();
  });
});

/*
 * Keyed state that follows its partition, on the Kafka buffer with its own state store
 * (`stateStore: 'buffer'`): two in-process workers of one keyed stage; one stops mid-run and
 * the other takes its partitions over, loading their shards from the state topic. The
 * per-key totals are checked against a count computed here from the input.
 */
const KEYS = 40;
const RECORDS = 6_000;
const Tally = defineMessageType('test.Tally', 1, z.object({ k: z.string(), c: z.number() }));
type Tally = z.output<typeof Tally.schema>;
const keyOf = (n: number) => `key-${n % KEYS}`;

/**
 * 1..RECORDS as `{ k, c: 1 }`, the buffer key being the keyBy key (co-partitioned). The
 * second half waits for `gate`, so no worker can finish its partitions before the other left.
 */
class TallySource implements Source<Tally> {
  next = 1;
  constructor(private readonly gate: Promise<void>) {}
  async poll(max: number): Promise<StreamRecord<Tally>[] | null> {
    if (this.next > RECORDS) return null;
    if (this.next > RECORDS / 2) await this.gate;
    const out: StreamRecord<Tally>[] = [];
    const end = Math.min(this.next <= RECORDS / 2 ? RECORDS / 2 : RECORDS, this.next + max - 1);
    for (; this.next <= end; this.next++) {
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

describe('partition state on the Kafka buffer (stateStore: buffer)', () => {
  it('a worker that stops hands its partitions’ keyed state to the one that takes them over', async () => {
    const ids = {
      pipeline: `cftest-state-${run}-e2e`,
      tallies: `cftest-state-${run}-tallies`,
      totals: `cftest-state-${run}-totals`,
      out: `cftest-state-${run}-out`,
    };
    const stateTopic = `${ids.pipeline}.${ids.totals}.state`;
    for (const stage of [ids.tallies, ids.totals, ids.out]) topics.add(stage).add(`${stage}.dlq`);
    topics.add(stateTopic);
    const sink = new TotalsSink();
    const stopA = new AbortController();
    let reduced = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));

    const input = defineInput({
      name: 'tallies',
      description: 'tallies',
      configSchema: z.object({}),
      outputType: Tally,
      createSource: () => new TallySource(gate),
    }).create(ids.tallies);
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
            if (++reduced === 1_500) stopA.abort();
            return { k: a.k, c: a.c + b.c };
          }),
    }).create(ids.totals);
    const output = defineOutput({
      name: 'totals-sink',
      description: 'keeps totals',
      configSchema: z.object({}),
      inputTypes: [Tally] as const,
      createSink: () => sink,
    }).create(ids.out);
    const p = new PipelineBuilder(ids.pipeline)
      .append(input)
      .append(totals)
      .append(output)
      .setBuffer(kafkaBuffer, {
        brokers,
        logLevel: 'nothing',
        transactionalIdPrefix: run,
        sessionTimeoutMs: 6_000,
        heartbeatIntervalMs: 500,
      })
      .setStageOptions(ids.tallies, { partitions: 4 })
      .build();

    const fast = { logger: silentLogger, pollTimeoutMs: 10, tickIntervalMs: 20, batchSize: 25 };
    const totalsWorker = {
      ...fast,
      mode: 'worker',
      stateStore: 'buffer',
      checkpointIntervalMs: 5,
    } as const;
    const out = p.run({ ...fast, mode: 'worker', stage: ids.out });
    const a = p.run({ ...totalsWorker, stage: ids.totals, instance: 'a', signal: stopA.signal });
    const b = p.run({ ...totalsWorker, stage: ids.totals, instance: 'b' });

    const observer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }),
    );
    buffers.push(observer);
    const admin = await observer.connectedAdmin();
    await waitFor(
      async () => {
        const { groups } = await admin.describeGroups([ids.totals]);
        return groups[0]?.state === 'Stable' && groups[0].members.length === 2;
      },
      { timeoutMs: 30_000, description: 'both totals workers in the group' },
    );
    const source = p.run({ ...fast, mode: 'worker', stage: ids.tallies });
    // The second half of the input is sent once worker a has left.
    const summaryA = await a;
    openGate();
    await source;
    const summaryB = await b;
    await out;

    expect(summaryA.status).toBe('stopped');
    // a counted part of the input before it left: its shards carried those counts over.
    const countedByA = summaryA.metrics.stages.find((m) => m.stage === ids.totals)?.recordsIn;
    expect(countedByA).toBeGreaterThan(0);
    expect(summaryB.status).toBe('finished');
    const expected = new Map<string, number>();
    for (let n = 1; n <= RECORDS; n++) expected.set(keyOf(n), (expected.get(keyOf(n)) ?? 0) + 1);
    expect(sink.totals).toEqual(expected);
    // One changelog partition per input partition, each with its last shard.
    expect(await observer.admin.describeTopic(stateTopic)).toEqual({
      name: stateTopic,
      partitions: 4,
    });
    const store = await worker();
    for (let partition = 0; partition < 4; partition++)
      expect((await store.load(ids.pipeline, ids.totals, partition))?.version).toBeGreaterThan(0);
  }, 120_000);
});
