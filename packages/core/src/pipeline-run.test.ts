import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type {
  Buffer as CfBuffer,
  BufferMessage,
  BufferProducer,
  TopicPartitionOffset,
} from './buffer.js';
import { FileCheckpointStore } from './checkpoint-store.js';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import { decodeDeadLetter, type DeadLetterRecord } from './dead-letter.js';
import { MemoryBuffer } from './memory-buffer.js';
import { defineMessageType } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Source } from './source.js';
import type { OutputStage } from './stage.js';
import { badSourceRecord } from './source-record-error.js';
import { CONTROL_HEADER, END_HEADER } from './reserved-headers.js';

const Num = defineMessageType('test.Number', 1, z.number());

/** Counts 1..to (or forever when `to` is undefined); records every commit with what was flushed then. */
class CountingSource implements Source<number> {
  next = 1;
  readonly commits: number[] = [];
  constructor(
    private readonly to: number | undefined,
    private readonly onCommit: (position: number) => void = () => {},
  ) {}
  async poll(max: number, signal: AbortSignal): Promise<StreamRecord<number>[] | null> {
    if (this.to !== undefined && this.next > this.to) return null;
    if (signal.aborted) return [];
    const end =
      this.to === undefined ? this.next + max - 1 : Math.min(this.to, this.next + max - 1);
    const out: StreamRecord<number>[] = [];
    for (; this.next <= end; this.next++)
      out.push({ key: `k${this.next}`, value: this.next, timestamp: this.next });
    if (this.to === undefined) await new Promise((r) => setTimeout(r, 1)); // unbounded: yield like a real feed
    return out;
  }
  position(): JsonValue {
    return this.next;
  }
  restore(position: JsonValue): void {
    this.next = position as number;
  }
  async commit(position: JsonValue): Promise<void> {
    this.onCommit(position as number);
    this.commits.push(position as number);
  }
  async close(): Promise<void> {}
}

/** Write buffers; flush makes durable. `failAfter` throws on the Nth write (a crash). */
class CollectingSink {
  pending: number[] = [];
  flushed: number[] = [];
  writes = 0;
  constructor(private readonly failAfter = Infinity) {}
  write(batch: readonly StreamRecord<number>[]) {
    if (++this.writes > this.failAfter) throw new Error('disk on fire');
    for (const r of batch) this.pending.push(r.value);
  }
  async flush() {
    this.flushed.push(...this.pending);
    this.pending = [];
  }
  async close() {}
}

/** `inner` with each polled record replaced by `map(record)` (a source that breaks its contract). */
function mappedSource(
  inner: CountingSource,
  map: (record: StreamRecord<number>) => StreamRecord<unknown>,
): Source<number> {
  return {
    position: () => inner.position(),
    restore: (p: JsonValue) => inner.restore(p),
    commit: (p: JsonValue) => inner.commit(p),
    close: () => inner.close(),
    async poll(max: number, signal: AbortSignal) {
      const batch = await inner.poll(max, signal);
      return (batch?.map(map) as StreamRecord<number>[] | undefined) ?? null;
    },
  };
}

function numbers(id: string, source: () => Source<number>) {
  return defineInput({
    name: 'counting',
    description: 'counts',
    configSchema: z.object({}),
    outputType: Num,
    createSource: source,
  }).create(id);
}

function mapper(id: string, fn: (n: number) => number) {
  return defineTransform({
    name: 'mapper',
    description: 'maps',
    configSchema: z.object({}),
    inputTypes: [Num] as const,
    outputType: Num,
    transform: ([input]) => input.map(fn),
  }).create(id);
}

function collector(id: string, sink: CollectingSink, inputs = 1) {
  return defineOutput({
    name: 'collector',
    description: 'collects',
    configSchema: z.object({}),
    inputTypes: Array.from({ length: inputs }, () => Num),
    createSink: () => sink,
  }).create(id) as unknown as OutputStage<readonly [number]>;
}

const fast = {
  logger: silentLogger,
  pollTimeoutMs: 10,
  tickIntervalMs: 20,
  checkpointIntervalMs: 20,
};
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function readTopic(buffer: MemoryBuffer, topic: string): Promise<BufferMessage[]> {
  const consumer = await buffer.consumer({
    group: `reader-${Math.random()}`,
    topics: [topic],
    start: 'earliest',
  });
  const out: BufferMessage[] = [];
  for (;;) {
    const batch = await consumer.poll(1000, 20);
    if (batch.length === 0) break;
    out.push(...batch);
  }
  await consumer.close();
  return out;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('pipeline.run', () => {
  it('inline: source -> map -> sink delivers every record in order, then finishes', async () => {
    const sink = new CollectingSink();
    const pipeline = new PipelineBuilder('inline')
      .append(numbers('numbers', () => new CountingSource(1000)))
      .append(mapper('double', (n) => n * 2))
      .append(collector('out', sink))
      .build();
    const summary = await pipeline.run({ ...fast, batchSize: 64 });
    expect(summary.status).toBe('finished');
    expect(sink.flushed).toEqual(range(1, 1000).map((n) => n * 2));
    const stages = Object.fromEntries(summary.metrics.stages.map((s) => [s.stage, s]));
    expect(stages.numbers!.recordsOut).toBe(1000);
    expect(stages.double!.recordsIn).toBe(1000);
    expect(stages.out!.recordsOut).toBe(1000);
    // Event times are 1..1000 ms after the epoch: the sink is "behind" by about the wall clock.
    expect(stages.out!.eventTimeLagMs).toBeGreaterThanOrEqual(Date.now() - 1000 - 60_000);
    expect(stages.double!.eventTimeLagMs).toBeNull();
  });

  it('inline and local give identical results on a fan-out/fan-in DAG', async () => {
    const run = async (mode: 'inline' | 'local') => {
      const a = new CollectingSink();
      const b = new CollectingSink();
      const src1 = numbers('odds', () => new CountingSource(300));
      const src2 = numbers('evens', () => new CountingSource(200));
      const plus = mapper('plus', (n) => n + 1000);
      const neg = mapper('neg', (n) => -n);
      const both = collector('both', a, 2);
      const only = collector('only', b);
      const pipeline = new PipelineBuilder(`dag-${mode}`)
        .edge(src1, plus)
        .edge(plus, both)
        .edge(src2, both)
        .edge(src2, neg)
        .edge(neg, only)
        .setStageOptions('odds', { partitions: 3 })
        .setStageOptions('plus', { serde: 'msgpack', partitions: 2 })
        .build();
      const summary = await pipeline.run({ ...fast, mode, batchSize: 50 });
      expect(summary.status).toBe('finished');
      return {
        both: [...a.flushed].sort((x, y) => x - y),
        only: [...b.flushed].sort((x, y) => x - y),
      };
    };
    const inline = await run('inline');
    const local = await run('local');
    expect(local).toEqual(inline);
    expect(inline.both).toEqual([...range(1, 200), ...range(1001, 1300)]);
    expect(inline.only).toEqual(
      range(1, 200)
        .map((n) => -n)
        .sort((x, y) => x - y),
    );
  });

  it('user code that throws goes to <stage>.dlq after retries, and the pipeline keeps running', async () => {
    for (const mode of ['inline', 'local'] as const) {
      const buffer = new MemoryBuffer();
      const sink = new CollectingSink();
      let calls = 0;
      const pipeline = new PipelineBuilder(`dlq-${mode}`)
        .append(numbers('numbers', () => new CountingSource(100)))
        .append(
          mapper('picky', (n) => {
            calls++;
            if (n % 10 === 0) throw new Error(`no multiples of ten: ${n}`);
            return n;
          }),
        )
        .append(collector('out', sink))
        .setBuffer(buffer)
        .setDeadLetter({ retries: 2 })
        .build();
      const summary = await pipeline.run({ ...fast, mode });
      expect(sink.flushed).toEqual(range(1, 100).filter((n) => n % 10 !== 0));
      expect(calls).toBe(90 + 10 * 3);
      const letters = (await readTopic(buffer, 'picky.dlq')).map((m) => decodeDeadLetter(m.value));
      expect(letters.map((l) => (l.original as { value: number }).value)).toEqual(
        range(1, 10).map((n) => n * 10),
      );
      const first = letters[0]!;
      expect(first).toMatchObject({
        stageId: 'picky',
        pipeline: `dlq-${mode}`,
        component: 'mapper',
        attempts: 3,
        inputIndex: 0,
        original: { encoding: 'json', value: 10 },
      } satisfies Partial<DeadLetterRecord>);
      expect(first.error.message).toContain('no multiples of ten: 10');
      expect(summary.metrics.stages.find((s) => s.stage === 'picky')!.deadLettered).toBe(10);
      await buffer.close();
    }
  });

  it('bytes that fail to decode go to the dead-letter topic as base64; end markers end the stage', async () => {
    const buffer = new MemoryBuffer();
    const sink = new CollectingSink();
    const pipeline = new PipelineBuilder('decode')
      .append(numbers('numbers', () => new CountingSource(0)))
      .append(collector('out', sink))
      .setBuffer(buffer)
      .build();
    const producer = await buffer.producer({ clientId: 'test' });
    await buffer.admin.ensureTopic({ name: 'numbers', partitions: 1 });
    const enc = new TextEncoder();
    const bad = new Uint8Array([0xff, 0xfe, 0x7b]);
    const worker = pipeline.run({ ...fast, mode: 'worker', stage: 'out' });
    await producer.send('numbers', [
      { value: enc.encode('1'), timestamp: 1 },
      { value: bad, timestamp: 2, key: 'bad-key' },
      { value: enc.encode('{"unterminated'), timestamp: 3 },
      { value: enc.encode('4'), timestamp: 4 },
      {
        value: new Uint8Array(0),
        timestamp: 5,
        headers: {
          [CONTROL_HEADER]: 'end',
          [END_HEADER]: JSON.stringify({ stage: 'numbers', covered: ['source'], total: 1 }),
        },
      },
    ]);
    const summary = await worker;
    expect(summary.status).toBe('finished');
    expect(sink.flushed).toEqual([1, 4]);
    const letters = (await readTopic(buffer, 'out.dlq')).map((m) => decodeDeadLetter(m.value));
    expect(letters).toHaveLength(2);
    expect(letters[0]).toMatchObject({
      stageId: 'out',
      attempts: 1,
      key: 'bad-key',
      error: { code: 'DECODE_FAILED' },
      original: { encoding: 'base64', data: Buffer.from(bad).toString('base64') },
      origin: { topic: 'numbers', partition: 0, offset: '1' },
    });
    expect(Buffer.from((letters[1]!.original as { data: string }).data, 'base64').toString()).toBe(
      '{"unterminated',
    );
    // Committed up to (not past) the end marker, so a later owner sees the end too.
    expect(buffer.committedOffset('out', 'numbers', 0)).toBe(4);
    await buffer.close();
  });

  it('at-least-once: a crash mid-run loses nothing on restart and commits never pass flushed data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-ckpt-'));
    dirs.push(dir);
    const total = 2000;
    const build = (sink: CollectingSink, source: CountingSource) =>
      new PipelineBuilder('crash')
        .append(numbers('numbers', () => source))
        .append(mapper('id', (n) => n))
        .append(collector('out', sink))
        .build();
    const first = new CollectingSink(15);
    const source1 = new CountingSource(total, (position) => {
      // Everything before `position` must already be flushed by the sink.
      expect(Math.max(0, ...first.flushed)).toBeGreaterThanOrEqual(position - 1);
    });
    await expect(
      build(first, source1).run({
        ...fast,
        batchSize: 50,
        checkpointIntervalMs: 0,
        checkpointDir: dir,
        ioRetries: 0,
      }),
    ).rejects.toMatchObject({
      code: 'STAGE_FAILED',
      message: expect.stringContaining('Stage "out" failed: sink.write'),
    });
    expect(source1.commits.length).toBeGreaterThan(0);
    expect(first.flushed.length).toBeLessThan(total);

    const second = new CollectingSink();
    const source2 = new CountingSource(total);
    const summary = await build(second, source2).run({
      ...fast,
      batchSize: 50,
      checkpointDir: dir,
    });
    expect(summary.status).toBe('finished');
    // Resumed from the last checkpoint, not from the start...
    expect(second.flushed[0]).toBe(source1.commits.at(-1));
    // ...and every record is present at least once.
    const seen = new Set([...first.flushed, ...second.flushed]);
    expect(range(1, total).filter((n) => !seen.has(n))).toEqual([]);
  });

  it('an abort (SIGINT-style) drains in-flight batches, flushes, commits and resolves', async () => {
    const sink = new CollectingSink();
    const source = new CountingSource(undefined);
    const controller = new AbortController();
    const pipeline = new PipelineBuilder('unbounded')
      .append(numbers('numbers', () => source))
      .append(mapper('id', (n) => n))
      .append(collector('out', sink))
      .build();
    const running = pipeline.run({
      ...fast,
      batchSize: 100,
      signal: controller.signal,
      checkpointIntervalMs: 60_000,
    });
    const deadline = Date.now() + 10_000;
    while (
      pipeline.metrics().stages.find((s) => s.stage === 'out')?.recordsOut === 0 ||
      pipeline.metrics().stages.length === 0
    ) {
      if (Date.now() > deadline) throw new Error('no records reached the sink within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    controller.abort();
    const summary = await running;
    expect(summary.status).toBe('stopped');
    // The final commit covers exactly what was flushed: nothing in flight was lost or skipped.
    expect(sink.pending).toEqual([]);
    expect(source.commits.at(-1)).toBe(sink.flushed.length + 1);
    expect(sink.flushed).toEqual(range(1, sink.flushed.length));
  });

  it('worker mode: two workers of one stage share the partitions through the consumer group', async () => {
    const buffer = new MemoryBuffer();
    const sink = new CollectingSink();
    const pipeline = new PipelineBuilder('workers')
      .append(numbers('numbers', () => new CountingSource(1000)))
      .append(mapper('triple', (n) => n * 3))
      .append(collector('out', sink))
      .setBuffer(buffer)
      .setStageOptions('numbers', { partitions: 4 })
      .setStageOptions('triple', { partitions: 2 })
      .build();
    const seenBy = new Map<string, number>();
    const counting = (instance: string) => ({
      ...fast,
      mode: 'worker' as const,
      stage: 'triple',
      instance,
      compileTransform: undefined,
    });
    const out = pipeline.run({ ...fast, mode: 'worker', stage: 'out' });
    const w1 = pipeline.run(counting('a'));
    const w2 = pipeline.run(counting('b'));
    const deadline = Date.now() + 10_000;
    while (buffer.groupSize('triple') < 2) {
      if (Date.now() > deadline)
        throw new Error('the two workers did not join group "triple" within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    await pipeline.run({ ...fast, mode: 'worker', stage: 'numbers' });
    const [s1, s2] = await Promise.all([w1, w2]);
    for (const [name, s] of [
      ['a', s1],
      ['b', s2],
    ] as const)
      seenBy.set(name, s.metrics.stages[0]!.recordsIn);
    await out;
    expect([...sink.flushed].sort((x, y) => x - y)).toEqual(range(1, 1000).map((n) => n * 3));
    // Both workers did part of the work, together all of it.
    expect(seenBy.get('a')! + seenBy.get('b')!).toBe(1000);
    expect(seenBy.get('a')).toBeGreaterThan(0);
    expect(seenBy.get('b')).toBeGreaterThan(0);
    await buffer.close();
  });

  it('event-time windows give identical results inline and through a 3-partition buffer', async () => {
    const windowSums = (id: string) =>
      defineTransform({
        name: 'window-sums',
        description: 'sums per key per 100 ms of event time',
        configSchema: z.object({}),
        inputTypes: [Num] as const,
        outputType: Num,
        transform: ([input]) =>
          input
            .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: 0 })
            .keyBy((n) => String(n % 3))
            .window({ type: 'tumbling', sizeMs: 100 })
            .reduce((a, b) => a + b),
      }).create(id);
    const expected = new Map<string, number>();
    for (let n = 1; n <= 1000; n++) {
      const k = `${n % 3}/${Math.floor(n / 100)}`;
      expected.set(k, (expected.get(k) ?? 0) + n);
    }
    const sortedExpected = [...expected.values()].sort((a, b) => a - b);
    for (const mode of ['inline', 'local'] as const) {
      const sink = new CollectingSink();
      const summary = await new PipelineBuilder(`windows-${mode}`)
        .append(numbers('numbers', () => new CountingSource(1000)))
        .append(windowSums('sums'))
        .append(collector('out', sink))
        .setStageOptions('numbers', { partitions: 3 })
        .build()
        .run({ ...fast, mode, batchSize: 64 });
      expect(summary.status).toBe('finished');
      expect([...sink.flushed].sort((a, b) => a - b)).toEqual(sortedExpected);
      const sums = summary.metrics.stages.find((s) => s.stage === 'sums')!;
      // The event-time watermark reached the last timestamps (1000) before the end-of-input flush.
      expect(sums.watermark).toBeGreaterThan(900);
      if (mode === 'local') {
        expect(sums.consumerLag).toBe(0);
        expect(sums.bytesIn).toBeGreaterThan(0);
      }
    }
  });

  it('retries a flaky sink with backoff and counts the errors', async () => {
    let failures = 0;
    const sink = new CollectingSink();
    const flaky = {
      write: (batch: readonly StreamRecord<number>[]) => {
        if (failures < 2) {
          failures++;
          throw new Error('connection reset');
        }
        sink.write(batch);
      },
      flush: () => sink.flush(),
      close: () => sink.close(),
    };
    const summary = await new PipelineBuilder('flaky')
      .append(numbers('numbers', () => new CountingSource(100)))
      .append(collector('out', flaky as unknown as CollectingSink))
      .build()
      .run({ ...fast, ioRetries: 3, ioRetryBackoffMs: 1 });
    expect(summary.status).toBe('finished');
    expect(sink.flushed).toEqual(range(1, 100));
    expect(summary.metrics.stages.find((s) => s.stage === 'out')!.errors).toBe(2);
  });

  it('schema checks (validation: all) and source-flagged bad records go to dead letters in both modes', async () => {
    for (const mode of ['inline', 'local'] as const) {
      const buffer = new MemoryBuffer();
      const sink = new CollectingSink();
      // A source that breaks its own contract: every 25th value is a string, every 40th unparseable.
      const lying = () =>
        mappedSource(new CountingSource(100), (r) =>
          r.value % 40 === 0
            ? badSourceRecord(`{garbage ${r.value}`, 'not JSON', r.timestamp)
            : r.value % 25 === 0
              ? { ...r, value: `n${r.value}` }
              : r,
        );
      const summary = await new PipelineBuilder(`bad-${mode}`)
        .append(numbers('numbers', lying))
        .append(collector('out', sink))
        .setBuffer(buffer)
        .setStageOptions('out', { validation: 'all' })
        .build()
        .run({ ...fast, mode });
      const wrongType = range(1, 100).filter((n) => n % 25 === 0 && n % 40 !== 0);
      const unparseable = range(1, 100).filter((n) => n % 40 === 0);
      expect(sink.flushed).toEqual(
        range(1, 100).filter((n) => !wrongType.includes(n) && !unparseable.includes(n)),
      );
      const schema = (await readTopic(buffer, 'out.dlq')).map((m) => decodeDeadLetter(m.value));
      expect(schema.map((l) => l.original)).toEqual(
        wrongType.map((n) => ({ encoding: 'json', value: `n${n}` })),
      );
      expect(schema.every((l) => l.error.code === 'SCHEMA_MISMATCH')).toBe(true);
      const flagged = (await readTopic(buffer, 'numbers.dlq')).map((m) =>
        decodeDeadLetter(m.value),
      );
      expect(flagged.map((l) => [l.error.code, l.original])).toEqual(
        unparseable.map((n) => [
          'SOURCE_RECORD_INVALID',
          { encoding: 'json', value: `{garbage ${n}` },
        ]),
      );
      const stages = Object.fromEntries(summary.metrics.stages.map((s) => [s.stage, s]));
      expect(stages.out!.deadLettered).toBe(wrongType.length);
      expect(stages.numbers!.deadLettered).toBe(unparseable.length);
      await buffer.close();
    }
  });

  it('exactly-once: a transform on a transactional buffer sends outputs and offsets in one transaction', async () => {
    const inner = new MemoryBuffer();
    const stats = { committed: 0, aborted: 0, withOffsets: 0, plainSends: 0 };
    // The memory buffer with Kafka-style transactions on top: sends and offsets become visible at commit.
    const transactional: CfBuffer = {
      kind: 'memory-tx',
      capabilities: { transactions: true, replay: true },
      admin: inner.admin,
      consumer: (options) => inner.consumer(options),
      close: () => inner.close(),
      async producer(options): Promise<BufferProducer> {
        const producer = await inner.producer({ clientId: options.clientId });
        return {
          send: async (topic, messages) => {
            stats.plainSends++;
            await producer.send(topic, messages);
          },
          close: () => producer.close(),
          beginTransaction: async () => {
            const sends: [string, readonly BufferMessage[]][] = [];
            let offsets: [string, readonly TopicPartitionOffset[]] | undefined;
            return {
              send: async (topic, messages) => void sends.push([topic, messages]),
              sendOffsets: async (group, positions) => void (offsets = [group, positions]),
              commit: async () => {
                for (const [topic, messages] of sends) await producer.send(topic, messages);
                if (offsets) {
                  inner.commitOffsets(...offsets);
                  stats.withOffsets++;
                }
                stats.committed++;
              },
              abort: async () => void stats.aborted++,
            };
          },
        };
      },
    };
    const sink = new CollectingSink();
    const summary = await new PipelineBuilder('eo')
      .append(numbers('numbers', () => new CountingSource(300)))
      .append(mapper('double', (n) => n * 2))
      .append(collector('out', sink))
      .setBuffer(transactional)
      .setStageOptions('double', { guarantee: 'exactly-once' })
      .build()
      .run({ ...fast, mode: 'local', batchSize: 50 });
    expect(summary.status).toBe('finished');
    expect([...sink.flushed].sort((a, b) => a - b)).toEqual(range(1, 300).map((n) => n * 2));
    expect(stats.withOffsets).toBeGreaterThanOrEqual(300 / 50);
    // One abort only: the empty transaction that initialises the producer before the stage
    // reads anything (it ends what a predecessor with its id left open); no batch aborted.
    expect(stats.aborted).toBe(1);
    // The transform's consumer offsets went through the transactions, up to the end marker at 300.
    expect(inner.committedOffset('double', 'numbers', 0)).toBe(300);
  });

  it('local mode checkpoints each stage in its own file, positions never past the end markers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-local-'));
    dirs.push(dir);
    const sink = new CollectingSink();
    const source = new CountingSource(100);
    const summary = await new PipelineBuilder('local-ckpt')
      .append(numbers('numbers', () => source))
      .append(mapper('double', (n) => n * 2))
      .append(collector('out', sink))
      .build()
      .run({ ...fast, mode: 'local', checkpointDir: dir, batchSize: 30 });
    expect(summary.status).toBe('finished');
    expect((await readdir(join(dir, 'local-ckpt'))).sort()).toEqual([
      'double.0.json',
      'numbers.0.json',
      'out.0.json',
    ]);
    const store = new FileCheckpointStore(dir);
    const input = await store.load('local-ckpt', 'numbers', '0');
    expect(input?.positions).toEqual({ source: 101 });
    expect(source.commits.at(-1)).toBe(101);
    // 100 records at offsets 0..99, then the end marker at 100: commits stop at the marker.
    const double = await store.load('local-ckpt', 'double', '0');
    expect(double?.positions).toEqual({ 'numbers/0': '100' });
    expect(double?.state).toHaveProperty('double');
    const out = await store.load('local-ckpt', 'out', '0');
    expect(out?.positions).toEqual({ 'double/0': '100' });
    expect(out!.id).toBeGreaterThanOrEqual(1);
  });

  it("local mode on a persistent buffer: a second run resumes state and offsets, ignoring the first run's end markers", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-rerun-'));
    dirs.push(dir);
    const buffer = new MemoryBuffer(); // outlives both runs, as Kafka would
    const runningSums = defineTransform({
      name: 'running-sums',
      description: 'running sum per key',
      configSchema: z.object({}),
      inputTypes: [Num] as const,
      outputType: Num,
      transform: ([input]) => input.keyBy((n) => String(n % 3)).reduce((a, b) => a + b),
    }).create('sums');
    const run = async (to: number) => {
      const sink = new CollectingSink();
      const summary = await new PipelineBuilder('rerun')
        .append(numbers('numbers', () => new CountingSource(to)))
        .append(runningSums)
        .append(collector('out', sink))
        .setBuffer(buffer)
        .build()
        .run({ ...fast, mode: 'local', checkpointDir: dir, batchSize: 40 });
      expect(summary.status).toBe('finished');
      return sink.flushed;
    };
    const first = await run(100);
    expect(first).toHaveLength(100);
    const second = await run(200);
    // Only records 101..200 were processed again, on top of the restored per-key sums.
    expect(second).toHaveLength(100);
    const expectedTotal = (k: number) =>
      range(1, 200)
        .filter((n) => n % 3 === k)
        .reduce((a, b) => a + b, 0);
    expect(second.slice(-3)).toEqual([expectedTotal(0), expectedTotal(1), expectedTotal(2)]);
    await buffer.close();
  });

  it('handleSignals: SIGTERM stops gracefully and the handlers are removed afterwards', async () => {
    const sink = new CollectingSink();
    const source = new CountingSource(undefined);
    const before = process.listenerCount('SIGTERM');
    const pipeline = new PipelineBuilder('signals')
      .append(numbers('numbers', () => source))
      .append(collector('out', sink))
      .build();
    const running = pipeline.run({ ...fast, handleSignals: true, batchSize: 10 });
    const deadline = Date.now() + 10_000;
    while ((pipeline.metrics().stages.find((s) => s.stage === 'out')?.recordsOut ?? 0) === 0) {
      if (Date.now() > deadline) throw new Error('no records reached the sink within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    process.emit('SIGTERM');
    const summary = await running;
    expect(summary.status).toBe('stopped');
    expect(source.commits.at(-1)).toBe(sink.flushed.length + 1);
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('logs the error that failed the run once, unless the caller reports it (logFailure: false)', async () => {
    const logged: string[] = [];
    const recording = {
      debug() {},
      info() {},
      warn() {},
      error: (message: string) => void logged.push(message),
      child: () => recording,
    };
    const failing = () =>
      new PipelineBuilder('fails')
        .append(numbers('numbers', () => new CountingSource(100)))
        .append(collector('out', new CollectingSink(0)))
        .build();
    const options = { ...fast, logger: recording, ioRetries: 0 };
    await expect(failing().run(options)).rejects.toMatchObject({ code: 'STAGE_FAILED' });
    expect(logged).toEqual(['pipeline failed; stopping']);
    logged.length = 0;
    await expect(failing().run({ ...options, logFailure: false })).rejects.toMatchObject({
      code: 'STAGE_FAILED',
    });
    expect(logged).toEqual([]);
  });

  it('bad run options fail before anything starts, with what to do', async () => {
    let created = 0;
    const pipeline = new PipelineBuilder('options')
      .append(
        numbers('numbers', () => {
          created++;
          return new CountingSource(1);
        }),
      )
      .append(collector('out', new CollectingSink()))
      .setStageOptions('numbers', { serde: 'avro' })
      .build();
    await expect(pipeline.run({ ...fast, mode: 'worker' })).rejects.toMatchObject({
      code: 'UNKNOWN_WORKER_STAGE',
      message: expect.stringContaining('numbers, out'),
    });
    await expect(pipeline.run({ ...fast, mode: 'worker', stage: 'nope' })).rejects.toMatchObject({
      code: 'UNKNOWN_WORKER_STAGE',
    });
    // A worker on the run's own memory buffer would lose its output (or wait forever for input).
    const lonely = new PipelineBuilder('lonely')
      .append(numbers('numbers', () => new CountingSource(5)))
      .append(collector('out', new CollectingSink()))
      .build();
    for (const stage of ['numbers', 'out']) {
      await expect(lonely.run({ ...fast, mode: 'worker', stage })).rejects.toMatchObject({
        code: 'RUN_OPTIONS_INVALID',
        message: expect.stringContaining('shared buffer'),
      });
    }
    await expect(pipeline.run({ ...fast, mode: 'cluster' as 'local' })).rejects.toMatchObject({
      code: 'RUN_OPTIONS_INVALID',
    });
    await expect(pipeline.run({ ...fast })).rejects.toMatchObject({
      code: 'UNKNOWN_SERDE',
      message: expect.stringContaining('json, msgpack'),
    });
    expect(created).toBe(0);
  });

  it('inline on the embedded default: a poison record lands, with its original bytes, in the dead-letter file the summary names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-dlq-'));
    dirs.push(dir);
    // Not valid UTF-8 (0xC3 0x28), as a byte-reading source hands it over: kept as bytes.
    const poison = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0xc3, 0x28, 0x7d]);
    const poisoned = () =>
      mappedSource(new CountingSource(20), (r) =>
        r.value === 7
          ? badSourceRecord(poison, 'invalid UTF-8 at byte 5', r.timestamp, {
              'codefeedr-file': 'in.ndjson',
              'codefeedr-line': '7',
            })
          : r,
      );
    const sink = new CollectingSink();
    const summary = await new PipelineBuilder('poison')
      .append(numbers('numbers', poisoned))
      .append(
        mapper('odd-only', (n) => {
          if (n % 2 === 0) throw new Error(`even: ${n}`);
          return n;
        }),
      )
      .append(collector('out', sink))
      .setDeadLetter({ dir })
      .build()
      .run({ ...fast });
    expect(sink.flushed).toEqual(range(1, 20).filter((n) => n % 2 === 1 && n !== 7));
    expect(summary.deadLetters).toEqual([
      { stage: 'numbers', count: 1, location: join(dir, 'numbers.dlq.ndjson') },
      { stage: 'odd-only', count: 10, location: join(dir, 'odd-only.dlq.ndjson') },
    ]);
    const read = async (file: string) =>
      (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as DeadLetterRecord);
    const [letter] = await read(summary.deadLetters[0]!.location);
    expect(letter!.original.encoding).toBe('base64');
    const bytes = Buffer.from((letter!.original as { data: string }).data, 'base64');
    expect(new Uint8Array(bytes)).toEqual(poison);
    expect(letter!.headers).toMatchObject({ 'codefeedr-file': 'in.ndjson', 'codefeedr-line': '7' });
    expect(letter!.error).toMatchObject({ code: 'SOURCE_RECORD_INVALID' });
    const evens = await read(summary.deadLetters[1]!.location);
    expect(evens.map((l) => (l.original as { value: number }).value)).toEqual(
      range(1, 20).filter((n) => n % 2 === 0),
    );
  });

  it.each(['inline', 'local'] as const)(
    '%s: a record key that is not a string is a dead letter; a null key is no key',
    async (mode) => {
      const dir = await mkdtemp(join(tmpdir(), 'cf-keys-'));
      dirs.push(dir);
      // A JavaScript source can set any key: every 3rd a number, every 3rd null, the rest strings.
      const keyed = () =>
        mappedSource(new CountingSource(30), (r) => ({
          ...r,
          // Not what the type allows, on purpose.
          key: (r.value % 3 === 0
            ? r.value
            : r.value % 3 === 1
              ? null
              : `k${r.value}`) as unknown as string,
        }));
      const sink = new CollectingSink();
      const summary = await new PipelineBuilder('keys')
        .append(numbers('numbers', keyed))
        .append(mapper('same', (n) => n))
        .append(collector('out', sink))
        .setDeadLetter({ dir })
        .build()
        .run({ ...fast, mode });
      expect(summary.status).toBe('finished');
      expect(sink.flushed.sort((a, b) => a - b)).toEqual(range(1, 30).filter((n) => n % 3 !== 0));
      expect(summary.deadLetters.map(({ stage, count }) => ({ stage, count }))).toEqual([
        { stage: 'numbers', count: 10 },
      ]);
      const letters = (await readFile(summary.deadLetters[0]!.location, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as DeadLetterRecord);
      expect(letters.map((l) => (l.original as { value: number }).value)).toEqual(
        range(1, 30).filter((n) => n % 3 === 0),
      );
      expect(letters[0]!.error).toMatchObject({ code: 'RECORD_KEY_INVALID' });
      expect(letters[0]!.error.message).toContain('key is a number (3), not a string');
    },
  );

  it('validation: sample checks one record in N, across batches', async () => {
    const buffer = new MemoryBuffer();
    const sink = new CollectingSink();
    // Every value is wrong for Num, so exactly the sampled ones are caught: 1 in 7 of 100.
    const strings = () => {
      const inner = new CountingSource(100);
      return {
        position: () => inner.position(),
        restore: (p: JsonValue) => inner.restore(p),
        close: () => inner.close(),
        async poll(max: number, signal: AbortSignal) {
          const batch = await inner.poll(max, signal);
          return (
            batch?.map(
              (r) => ({ ...r, value: `s${r.value}` }) as unknown as StreamRecord<number>,
            ) ?? null
          );
        },
      } as Source<number>;
    };
    await new PipelineBuilder('sampled')
      .append(numbers('numbers', strings))
      .append(collector('out', sink))
      .setBuffer(buffer)
      .setStageOptions('out', { validation: 'sample', validationSampleRate: 7 })
      .build()
      .run({ ...fast, batchSize: 9 });
    const letters = (await readTopic(buffer, 'out.dlq')).map((m) => decodeDeadLetter(m.value));
    const sampled = range(1, 100).filter((n) => n % 7 === 0);
    expect(letters.map((l) => (l.original as { value: string }).value)).toEqual(
      sampled.map((n) => `s${n}`),
    );
    expect(sink.flushed).toHaveLength(100 - sampled.length);
    await buffer.close();
  });

  it('worker mode: when one worker stops mid-run the other takes over its partitions and nothing is lost', async () => {
    const buffer = new MemoryBuffer({ maxRecordsPerPartition: 200 });
    const sink = new CollectingSink();
    const stopA = new AbortController();
    let mapped = 0;
    const pipeline = new PipelineBuilder('takeover')
      .append(numbers('numbers', () => new CountingSource(5000)))
      .append(
        mapper('triple', (n) => {
          // A fifth of the way through (a's share is about half), worker a is told to stop.
          if (++mapped === 1000) stopA.abort();
          return n * 3;
        }),
      )
      .append(collector('out', sink))
      .setBuffer(buffer)
      .setStageOptions('numbers', { partitions: 4 })
      .build();
    const out = pipeline.run({ ...fast, mode: 'worker', stage: 'out' });
    const a = pipeline.run({
      ...fast,
      mode: 'worker',
      stage: 'triple',
      instance: 'a',
      signal: stopA.signal,
      batchSize: 20,
    });
    const b = pipeline.run({
      ...fast,
      mode: 'worker',
      stage: 'triple',
      instance: 'b',
      batchSize: 20,
    });
    const deadline = Date.now() + 10_000;
    while (buffer.groupSize('triple') < 2) {
      if (Date.now() > deadline) throw new Error('workers did not join within 10 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    const input = pipeline.run({ ...fast, mode: 'worker', stage: 'numbers', batchSize: 50 });
    const summaryA = await a;
    expect(summaryA.status).toBe('stopped');
    await input;
    const summaryB = await b;
    expect(summaryB.status).toBe('finished');
    await out;
    // Worker b read a's partitions from a's last commit: every record arrived at least once.
    const seen = new Set(sink.flushed);
    expect(range(1, 5000).filter((n) => !seen.has(n * 3))).toEqual([]);
    expect(summaryA.metrics.stages[0]!.recordsIn).toBeGreaterThan(0);
    expect(summaryA.metrics.stages[0]!.recordsIn).toBeLessThan(5000);
    await buffer.close();
  });
});
