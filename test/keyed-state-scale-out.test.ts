// Keyed state that follows its partitions: three worker processes of one keyed stage share a
// 6-partition Kafka topic; their state lives in a shared store, sharded by partition, never on
// a worker's disk. Workers are SIGKILLed at random moments and restarted as new processes with
// nothing local, and the group goes 3 → 2 → 3. Every per-key running total and every per-key
// 1-minute window count must equal a count made here from the input: on the Redis store at
// least once, and on the Kafka store exactly once, where every output must also appear exactly
// once (each key's totals are 1, 2, …, n, each once; each window once).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaBuffer, kafkaBufferConfigSchema } from '@codefeedr/plugin-kafka';
import { Redis } from 'ioredis';
import { waitFor, WorkerProcess } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
const redisUrl = process.env.CODEFEEDR_REDIS_URL;
if (!brokers || !redisUrl)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS / CODEFEEDR_REDIS_URL are not set: run through vitest (its global setup starts the services) or `npm run services:up`.',
  );

const runId = randomBytes(4).toString('hex');
const dir = join(import.meta.dirname, '..', '.tmp', `keyed-scale-out-${runId}`);
const PARTITIONS = 6;
const KEYS = 1_000;
const CHUNKS = 10;
const PER_CHUNK = 20_000; // 200,000 records
const STEP_MS = 3; // event time between records: 200,000 records span 10 minutes
const T0 = Date.UTC(2026, 0, 1);
const WINDOW_MS = 60_000;
type Variant = {
  store: 'redis' | 'kafka';
  guarantee: 'at-least-once' | 'exactly-once';
  /** The Kafka buffer's client (its `client` key). */
  client: 'kafkajs' | 'platformatic';
};
const idsOf = (variant: Variant) => {
  const run = `${variant.store}-${variant.guarantee === 'exactly-once' ? 'eos' : 'alo'}-${variant.client}-${runId}`;
  return {
    pipeline: `keyed-${run}`,
    numbers: `keyed-numbers-${run}`,
    totals: `keyed-totals-${run}`,
    out: `keyed-out-${run}`,
    prefix: `cftest-keyed-${run}`,
  };
};
// The Kafka exactly-once variant failed 10 of its first ~20 runs; each failure was a bug,
// fixed in the order found: a worker died on a retryable NOT_LEADER (store calls are
// retried); two workers fired one partition's windows (a shard read raced a commit); a
// transaction's produce was over the broker's max message size, first with large values, then
// with many small records whose keys and headers were not counted (sends are chunked by record
// bytes); the flush went out while partitions were still moving (restored windows behind their
// new worker's watermark fired at once: the test waits for the spread, and the limit is in the
// core README); a worker that took a partition over could save a shard with positions behind
// the state it loaded, so the next owner counted records twice; a fenced worker kept what its aborted
// batches had fired and the watermarks they had advanced, so windows were committed twice or
// redone records were late (the chain is reset to the committed state); and a transient
// CONCURRENT_TRANSACTIONS killed a worker (the transaction is redone, as after a fence); and
// once more a shard saved with positions behind its state, now when the group revoked the
// partition mid-batch and the consumer forgot its position (a shard saves the positions its
// state reflects, kept by the shards, not the consumer's).
//
// Then, out of the suite while these were found: three workers fencing each other's claims in
// a ring, every 0.5 s for the whole wait, so no window fired (a fenced worker now waits a
// random, growing time before it reloads); the single test broker fencing itself when its
// controller fell 18 s behind (services harness); and running totals committed twice while
// every final total was right, most likely a worker committing a batch for a partition the
// group had just given to another, whose load did not see that worker's claim yet (a batch
// is not committed once a rebalance begins, and a load fences every writer it finds last,
// reading again while a transaction on the changelog is in flight). After those, 4 of 4 runs
// passed with two busy loops on the 2 cores, and it is back in the suite. Known limit left:
// kafkajs cannot fence a stale group member the way Kafka Streams does (KIP-447's group
// generation in TxnOffsetCommit), see the core README.
const variants: Variant[] = [
  { store: 'redis', guarantee: 'at-least-once', client: 'kafkajs' },
  { store: 'kafka', guarantee: 'at-least-once', client: 'kafkajs' },
  { store: 'kafka', guarantee: 'exactly-once', client: 'kafkajs' },
  // The buffer on @platformatic/kafka (at-least-once only; its Kafka state store runs on a
  // kafkajs connection, see plugin-kafka's README).
  { store: 'kafka', guarantee: 'at-least-once', client: 'platformatic' },
];

// One worker of the keyed stage: running total per key and a 1-minute tumbling count per key,
// on the Kafka buffer, state in the Redis store. Out-of-orderness covers the whole input, so
// windows fire at the end: a partition that moves may be behind its new worker's event time
// (see packages/core/README.md, "Keyed state and several workers").
const workerSource = `
import { PipelineBuilder, defineInput, defineOutput, defineTransform, Any, silentLogger, z } from '@codefeedr/core';
import { kafkaBuffer } from '@codefeedr/plugin-kafka';
import { RedisBuffer } from '@codefeedr/plugin-redis';
import { appendFileSync } from 'node:fs';

const s = JSON.parse(process.env.KEYED_WORKER);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\\n');
const kafka = await kafkaBuffer.create({ brokers: s.brokers, client: s.client, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, logLevel: 'nothing' });
const redis = await RedisBuffer.connect({ url: s.redisUrl, prefix: s.prefix });
const unused = defineInput({ name: 'unused', description: 'the test produces the topic', configSchema: z.object({}), outputType: Any, createSource: () => { throw new Error('not run here'); } }).create(s.numbers);
const totals = defineTransform({
  name: 'totals', description: 'running totals and windows per key', configSchema: z.object({}),
  inputTypes: [Any], outputType: Any,
  transform: ([events]) => {
    const timed = events.assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: s.outOfOrdernessMs });
    const running = timed.keyBy((e) => e.k).reduce((a, b) => ({ k: a.k, n: b.n, c: (a.c ?? 1) + 1 })).map((t) => ({ kind: 'total', k: t.k, c: t.c ?? 1 }));
    const windows = timed.keyBy((e) => e.k).window({ type: 'tumbling', sizeMs: s.windowMs })
      .process((k, w, values, out) => out.collect({ kind: 'window', k, start: w.start, count: values.length, by: s.instance + '.' + process.pid }));
    return running.union(windows);
  },
}).create(s.totals);
const sink = defineOutput({
  name: 'lines', description: 'NDJSON lines', configSchema: z.object({}), inputTypes: [Any],
  createSink: () => ({
    write(batch) { appendFileSync(s.sinkPath, batch.map((r) => JSON.stringify(r.value) + '\\n').join('')); },
    async flush() {}, async close() {},
  }),
}).create(s.out);
const tapped = {
  kind: kafka.kind, capabilities: kafka.capabilities, admin: kafka.admin,
  producer: (options) => kafka.producer(options),
  consumer: (options) => kafka.consumer({ ...options, onAssignmentChange(assigned) {
    options.onAssignmentChange?.(assigned);
    emit({ event: 'assignment', at: Date.now(), partitions: assigned.map((tp) => tp.partition).sort((a, b) => a - b) });
  } }),
  close: () => kafka.close(),
};
// Warnings (fencing, rebalances) as events on stdout, for a failure's tail.
const warnings = { ...silentLogger, warn: (message, fields) => emit({ event: 'warn', at: Date.now(), message, fields }), child: () => warnings };
const pipeline = new PipelineBuilder(s.pipeline).append(unused).append(totals).append(sink)
  .setBuffer(tapped).setStageOptions(s.numbers, { partitions: s.partitions })
  .setStageOptions(s.totals, { guarantee: s.guarantee }).build();
const summary = await pipeline.run({
  mode: 'worker', stage: s.stage, instance: s.instance, handleSignals: true, logger: warnings,
  checkpointIntervalMs: 200, stateStore: await (s.store === 'kafka' ? kafka : redis).stateStore(),
});
await kafka.close();
await redis.close();
emit({ event: 'stopped', status: summary.status });
process.exit(0);
`;

interface Line {
  kind: 'total' | 'window';
  k: string;
  c?: number;
  start?: number;
  count?: number;
}

function lines(folder: string): Line[] {
  const out: Line[] = [];
  if (!existsSync(folder)) return out;
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.ndjson')))
    // Whole lines only: the sink worker may be appending the last one.
    for (const line of readFileSync(join(folder, file), 'utf8').split('\n').slice(0, -1))
      if (line.trim() !== '') out.push(JSON.parse(line) as Line);
  return out;
}

const keyOf = (i: number) => `key-${i % KEYS}`;
const timeOf = (i: number) => T0 + i * STEP_MS;

const processes: WorkerProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop(5_000)));
  // KEEP_KEYED=1 keeps the sink files and the topics, to read a failure's data afterwards.
  if (existsSync(dir) && process.env.KEEP_KEYED === undefined)
    rmSync(dir, { recursive: true, force: true });
  const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
  if (process.env.KEEP_KEYED === undefined)
    for (const ids of variants.map(idsOf))
      for (const topic of [
        ids.numbers,
        ids.totals,
        `${ids.totals}.dlq`,
        `${ids.out}.dlq`,
        `${ids.pipeline}.${ids.totals}.state`,
      ])
        await buffer.admin.deleteTopic(topic).catch(() => undefined);
  await buffer.close();
  const redis = new Redis(redisUrl);
  for (const ids of variants.map(idsOf)) {
    const keys = await redis.keys(`${ids.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

describe.each(variants)(
  'keyed state across worker processes (Kafka buffer on $client, $store state store, $guarantee)',
  (variant) => {
    it('keeps every per-key total and window count exact through SIGKILLs, restarts with empty disks and 3 → 2 → 3', async () => {
      const ids = idsOf(variant);
      const exactlyOnce = variant.guarantee === 'exactly-once';
      const dir = join(
        import.meta.dirname,
        '..',
        '.tmp',
        `keyed-scale-out-${runId}`,
        `${variant.store}-${variant.guarantee}-${variant.client}`,
      );
      mkdirSync(dir, { recursive: true });
      const script = join(dir, 'worker.ts');
      writeFileSync(script, workerSource);
      const totalsDir = join(dir, 'totals');
      mkdirSync(totalsDir, { recursive: true });
      let started = 0;
      const named: [string, WorkerProcess][] = [];
      const live = new Map<string, WorkerProcess>();
      const killed = new Set<WorkerProcess>();
      const start = (instance: string, stage = ids.totals): WorkerProcess => {
        const settings = {
          ...ids,
          ...variant,
          brokers,
          redisUrl,
          instance,
          stage,
          partitions: PARTITIONS,
          windowMs: WINDOW_MS,
          outOfOrdernessMs: CHUNKS * PER_CHUNK * STEP_MS,
          sinkPath: join(totalsDir, `${instance}-${started++}.ndjson`),
        };
        const worker = new WorkerProcess({
          script,
          env: { ...process.env, KEYED_WORKER: JSON.stringify(settings) },
        });
        processes.push(worker);
        named.push([`${instance}-${started - 1}`, worker]);
        if (stage === ids.totals) live.set(instance, worker);
        return worker;
      };
      const assignment = (w: WorkerProcess) =>
        w.events.filter((e) => e.event === 'assignment').at(-1)?.partitions as number[] | undefined;
      const spread = (share: number) => {
        const all = [...live.values()].map(assignment);
        if (all.some((a) => a === undefined || a.length !== share)) return false;
        return new Set(all.flat()).size === PARTITIONS;
      };
      let sinkWorker: WorkerProcess | undefined;
      const alive = () => {
        for (const [name, w] of live)
          if (!w.running && !killed.has(w)) throw new Error(`worker ${name} died:\n${w.tail()}`);
        const sink = sinkWorker!;
        if (!sink.running) throw new Error(`the sink worker died:\n${sink.tail()}`);
      };

      const buffer = new KafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }),
      );
      await buffer.admin.ensureTopic({ name: ids.numbers, partitions: PARTITIONS });
      const producer = await buffer.producer({ clientId: `keyed-test-${ids.pipeline}` });
      let produced = 0;
      const produce = async (count: number) => {
        const messages = [];
        for (let n = 0; n < count; n++) {
          const i = produced++;
          const k = keyOf(i);
          messages.push({
            key: k,
            value: new TextEncoder().encode(JSON.stringify({ k, n: i })),
            timestamp: timeOf(i),
          });
        }
        await producer.send(ids.numbers, messages);
      };
      // Expected, from the input alone.
      const expectedTotals = new Map<string, number>();
      const expectedWindows = new Map<string, number>();

      const kill = async (instance: string) => {
        const w = live.get(instance)!;
        killed.add(w);
        w.kill('SIGKILL');
        await w.exited;
        live.delete(instance);
      };
      try {
        // The sink stage: one worker, never killed, appending what the keyed stage emits.
        const sink = start('sink', ids.out);
        sinkWorker = sink;
        for (const name of ['w1', 'w2', 'w3']) start(name);
        // Each spread waits up to 120 s: a rebalance waits for every member to rejoin, up to
        // kafkajs's 60 s rebalance timeout when one is slow (seen on a loaded machine).
        await waitFor(() => (alive(), spread(2)), {
          timeoutMs: 120_000,
          description: '2 partitions per worker',
        });
        const random = (n: number) => Math.floor(Math.random() * n);
        for (let chunk = 0; chunk < CHUNKS; chunk++) {
          await produce(PER_CHUNK);
          // A SIGKILL at a random moment while the chunk is being processed; the replacement
          // is a new process with nothing on disk (its state comes from Redis).
          await new Promise((r) => setTimeout(r, random(1500)));
          const victim = `w${1 + random(3)}`;
          await kill(victim);
          if (chunk === 3) {
            // 3 → 2: the other two take all six partitions (and their state) over.
            await waitFor(() => (alive(), spread(3)), {
              timeoutMs: 120_000,
              description: 'two workers with 3 partitions each',
            });
          }
          start(victim);
          await waitFor(() => (alive(), spread(2)), {
            timeoutMs: 120_000,
            description: `2 partitions per worker after restarting ${victim}`,
          });
        }
        // A last kill with no pause; once its partitions are spread again, one record per
        // partition far in event time, so every window of the input fires. Not before: a
        // worker's watermark never goes back, so a partition that moves to a worker after that
        // worker's own partitions passed the flush would have its remaining records late (and
        // its restored windows fire at once). Event time is per worker, not per partition:
        // see packages/core/README.md, "Event time" under "Keyed state that follows its
        // partitions".
        await kill('w2');
        start('w2');
        await waitFor(() => (alive(), spread(2)), {
          timeoutMs: 120_000,
          description: '2 partitions per worker before the flush',
        });
        for (let i = 0; i < produced; i++) {
          expectedTotals.set(keyOf(i), (expectedTotals.get(keyOf(i)) ?? 0) + 1);
          const w = `${keyOf(i)}@${Math.floor(timeOf(i) / WINDOW_MS) * WINDOW_MS}`;
          expectedWindows.set(w, (expectedWindows.get(w) ?? 0) + 1);
        }
        const flushAt = timeOf(produced) + 2 * CHUNKS * PER_CHUNK * STEP_MS + WINDOW_MS;
        await producer.send(
          ids.numbers,
          Array.from({ length: PARTITIONS }, (_, p) => ({
            key: `flush-${p}`,
            partition: p,
            value: new TextEncoder().encode(JSON.stringify({ k: `flush-${p}`, n: -1 })),
            timestamp: flushAt,
          })),
        );
        const totalsNow = () => {
          const t = new Map<string, number>();
          for (const l of lines(totalsDir))
            if (l.kind === 'total' && !l.k.startsWith('flush'))
              t.set(l.k, Math.max(t.get(l.k) ?? 0, l.c!));
          return t;
        };
        const windowsNow = () => {
          const w = new Map<string, Set<number>>();
          for (const l of lines(totalsDir))
            if (l.kind === 'window' && !l.k.startsWith('flush')) {
              const id = `${l.k}@${l.start}`;
              if (!w.has(id)) w.set(id, new Set());
              w.get(id)!.add(l.count!);
            }
          return w;
        };
        let progress = '';
        await waitFor(
          () => {
            alive();
            const t = totalsNow();
            const short = [...expectedTotals].filter(([k, c]) => (t.get(k) ?? 0) < c);
            const windows = windowsNow().size;
            progress = `${short.length} keys short of their total (e.g. ${JSON.stringify(short.slice(0, 3).map(([k, c]) => [k, t.get(k), c]))}), ${windows} of ${expectedWindows.size} windows`;
            return short.length === 0 && windows >= expectedWindows.size;
          },
          { timeoutMs: 90_000, description: 'every key’s total and every window in the sinks' },
        ).catch((error: unknown) => {
          throw new Error(`${(error as Error).message}: ${progress}`);
        });
        // Exact: at-least-once may repeat an output, but the state never counts a record twice
        // or misses one, so every emitted window count and the last total per key are the truth.
        expect(totalsNow()).toEqual(expectedTotals);
        const windows = windowsNow();
        expect(new Set(windows.keys())).toEqual(new Set(expectedWindows.keys()));
        for (const [id, counts] of windows)
          expect([id, [...counts]]).toEqual([id, [expectedWindows.get(id)]]);
        if (exactlyOnce) {
          // Every output once: each key's running totals are 1, 2, …, n, each once, and each
          // window's count is emitted once.
          const seen = new Map<string, number[]>();
          const windowLines = new Map<string, number>();
          for (const l of lines(totalsDir)) {
            if (l.k.startsWith('flush')) continue;
            if (l.kind === 'total') {
              if (!seen.has(l.k)) seen.set(l.k, []);
              seen.get(l.k)!.push(l.c!);
            } else {
              const id = `${l.k}@${l.start}`;
              windowLines.set(id, (windowLines.get(id) ?? 0) + 1);
            }
          }
          const wrong = [...expectedTotals].filter(([k, n]) => {
            const got = (seen.get(k) ?? []).sort((a, b) => a - b);
            return got.length !== n || got.some((c, i) => c !== i + 1);
          });
          expect(wrong.map(([k]) => [k, seen.get(k)?.length]).slice(0, 5)).toEqual([]);
          expect([...windowLines].filter(([, times]) => times !== 1)).toEqual([]);
        }
        await Promise.all([...live.values(), sink].map((w) => w.stop()));
      } finally {
        // KEEP_KEYED=1: each worker's events (assignments, warnings) beside its sink file.
        if (process.env.KEEP_KEYED !== undefined)
          for (const [name, w] of named)
            writeFileSync(
              join(dir, `events-${name}.ndjson`),
              w.events.map((e) => JSON.stringify(e)).join('\n'),
            );
        await producer.close();
        await buffer.close();
      }
    }, 600_000);
  },
);
