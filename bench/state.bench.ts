// npm run bench:state — keyed state checkpoints and restores (the keyed-state issue):
// - checkpoint time of one partition holding 1,000,000 keys when 1% vs 100% of them changed
//   since the last checkpoint, on the file store's incremental checkpoints (deltas of the
//   changed keys); the ratio 100% / 1% is the figure (target >= 10); the Kafka store saves
//   deltas too, Redis whole shards;
// - restore time of that partition (one worker taking it over) from each store: file and Kafka
//   (the last whole shard and the deltas after it), Redis (the whole shard);
// - peak RSS of a stage holding 5,000,000 distinct keys on the disk backend (target < 500 MB)
//   next to the in-memory backend, each in a child process of its own.
// Measured on the production path: a compiled chain (keyBy().reduce()) and the runtime's
// PartitionStateShards, as a --stage worker runs them. Three runs of each timing, median.
//   npm run build   (the bench imports the builds)
//   Redis and Kafka: CODEFEEDR_REDIS_URL / CODEFEEDR_KAFKA_BROKERS, else the services harness's
//   (npm run services:up).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as CoreModule from '@codefeedr/core';
import type * as InternalModule from '@codefeedr/core/internal';
import type { DataStream, StateStore, StreamRecord } from '@codefeedr/core';
import { benchRun, peakRssMb, type BenchRatio } from './bench-results.ts';

let core: typeof CoreModule;
let internal: typeof InternalModule;
try {
  core = await import('@codefeedr/core');
  internal = await import('@codefeedr/core/internal');
} catch {
  console.error('bench:state imports the builds: run `npm run build` first.');
  process.exit(1);
}

const KEYS = Number(process.env.BENCH_STATE_KEYS ?? 1_000_000);
const HELD_KEYS = Number(process.env.BENCH_STATE_HELD_KEYS ?? 5_000_000);
const BATCH = 10_000;
const RUNS = 3;

const logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => logger };
// A pipeline name of its own per run: the Kafka store's changelog topic is named for it, and a
// later run must not load what an earlier one saved.
const pipelineName = `bench-state-${Date.now()}`;
const ctx = {
  stageId: 'counts',
  pipelineName,
  logger,
  signal: new AbortController().signal,
};

interface Count {
  k: string;
  c: number;
}

const counts = core.defineTransform({
  name: 'counts',
  description: 'a running count per key',
  configSchema: core.z.object({}),
  inputTypes: [core.Any] as const,
  outputType: core.Any,
  transform: ([s]) =>
    (s as DataStream<Count>)
      .keyBy((r) => r.k)
      .reduce((a, b) => ({ k: a.k, c: a.c + b.c })) as DataStream<unknown>,
});

const newChain = (stateBackend?: CoreModule.StateBackend) =>
  internal.compileTransform(counts.create('counts'), ctx, {
    deadLetter: () => {},
    retries: 0,
    ...(stateBackend === undefined ? {} : { stateBackend }),
  });

/** One record for each key in [from, from + n) (keys `k<i>` modulo `keys`). */
function feed(chain: ReturnType<typeof newChain>, from: number, n: number, keys = KEYS): void {
  for (let start = 0; start < n; start += BATCH) {
    const size = Math.min(BATCH, n - start);
    const batch: StreamRecord[] = new Array(size);
    for (let i = 0; i < size; i++) {
      const k = `k${(from + start + i) % keys}`;
      batch[i] = { key: k, value: { k, c: 1 }, timestamp: 0, headers: undefined };
    }
    chain.processBatch(0, 'in/0', batch);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = async (run: () => Promise<void>) => {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
};

/** Checkpoint times (s) with `share` of the keys changed, and the restore time from `store`. */
async function measure(store: StateStore) {
  const chain = newChain();
  const shards = new internal.PartitionStateShards(store, pipelineName, 'counts', 1, chain, logger);
  await shards.reassign(new Set([0]));
  feed(chain, 0, KEYS);
  let offset = KEYS;
  const save = async () => {
    await shards.save({ 'in/0': String(offset) });
  };
  const whole = await seconds(save); // the first save of a partition is whole
  const changed = async (share: number) => {
    const n = Math.round(KEYS * share);
    feed(chain, offset, n);
    offset += n;
    return seconds(save);
  };
  const onePercent: number[] = [];
  const all: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    onePercent.push(await changed(0.01));
    all.push(await changed(1));
  }
  const restore: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const next = newChain();
    const taker = new internal.PartitionStateShards(store, pipelineName, 'counts', 1, next, logger);
    restore.push(await seconds(async () => void (await taker.reassign(new Set([0])))));
  }
  // The restored state is the state saved: the count of every key checked.
  const check = newChain();
  await new internal.PartitionStateShards(store, pipelineName, 'counts', 1, check, logger).reassign(
    new Set([0]),
  );
  const out = check.processBatch(0, 'in/0', [
    { key: 'k0', value: { k: 'k0', c: 0 }, timestamp: 0, headers: undefined },
  ]);
  const expected = Math.floor((offset - 1) / KEYS) + 1; // records 0, KEYS, 2 KEYS, … below offset
  const got = (out[0]!.value as Count).c;
  if (got !== expected)
    throw new Error(`${store.kind}: restored count of k0 is ${got}, expected ${expected}`);
  return { whole, onePercent, all, restore };
}

type Backend = 'memory' | 'disk';

/** Peak RSS (MB) and seconds of a process whose chain takes `keys` keys on `backend`: a child of its own, measured alone. */
function held(
  keys: number,
  backend: Backend,
  nodeFlags: string[] = [],
): { rssMb: number; seconds: number } {
  const child = spawnSync(
    process.execPath,
    [...nodeFlags, import.meta.filename, '--hold', String(keys), backend],
    { encoding: 'utf8', env: { ...process.env } },
  );
  if (child.status !== 0) throw new Error(`holding ${keys} keys failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim()) as { rssMb: number; seconds: number };
}

if (process.argv[2] === '--hold') {
  const backend = process.argv[4] as Backend;
  const diskDir = mkdtempSync(join(tmpdir(), 'cf-bench-state-disk-'));
  const started = performance.now();
  const chain = newChain(
    backend === 'disk' ? new core.DiskStateBackend({ dir: diskDir }) : undefined,
  );
  const keys = Number(process.argv[3]);
  feed(chain, 0, keys, keys);
  const seconds = (performance.now() - started) / 1000;
  chain.close?.();
  rmSync(diskDir, { recursive: true, force: true });
  console.log(JSON.stringify({ rssMb: Math.round(peakRssMb()), seconds }));
  process.exit(0);
}

const bench = benchRun('state');
console.log(
  `bench:state — ${KEYS.toLocaleString('en')} keys in one partition; load ${bench.loadAverageBefore.map((l) => l.toFixed(2)).join(' ')}`,
);

const dir = mkdtempSync(join(tmpdir(), 'cf-bench-state-'));
const stores: { name: string; store: () => Promise<StateStore>; close?: () => Promise<void> }[] = [
  { name: 'file', store: async () => new core.FileStateStore(dir) },
];
const redisUrl = process.env.CODEFEEDR_REDIS_URL ?? 'redis://127.0.0.1:6390';
const kafkaBrokers = (process.env.CODEFEEDR_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const closers: (() => Promise<void>)[] = [];
const { redisBuffer } = await import('@codefeedr/plugin-redis');
const { kafkaBuffer } = await import('@codefeedr/plugin-kafka');
const run = `${Date.now()}`;
stores.push({
  name: 'redis',
  store: async () => {
    const buffer = await redisBuffer.create({ url: redisUrl, prefix: `bench-state-${run}` });
    closers.push(() => buffer.close());
    return buffer.stateStore!();
  },
});
stores.push({
  name: 'kafka',
  store: async () => {
    const buffer = await kafkaBuffer.create({ brokers: kafkaBrokers, logLevel: 'nothing' });
    closers.push(async () => {
      await buffer.admin.deleteTopic(`${pipelineName}.counts.state`).catch(() => undefined);
      await buffer.close();
    });
    return buffer.stateStore!();
  },
});

const figures: Record<string, unknown> = {};
const rows = [['STORE', 'WHOLE SAVE', '1% CHANGED', '100% CHANGED', 'RESTORE']];
for (const { name, store } of stores) {
  const m = await measure(await store());
  figures[name] = m;
  rows.push([
    name,
    `${m.whole.toFixed(2)} s`,
    `${median(m.onePercent).toFixed(3)} s`,
    `${median(m.all).toFixed(2)} s`,
    `${median(m.restore).toFixed(2)} s`,
  ]);
}
for (const close of closers) await close();
rmSync(dir, { recursive: true, force: true });
const inMemory = held(HELD_KEYS, 'memory');
const onDisk = held(HELD_KEYS, 'disk');
// The same with V8's young generation capped (its default is sized for the machine's memory,
// and the record and value garbage of a 5M-key run fills it): what NODE_OPTIONS can add.
const onDiskSmallYoung = held(HELD_KEYS, 'disk', ['--max-semi-space-size=8']);
figures.heldKeys = HELD_KEYS;
figures.inMemoryPeakRssMb = inMemory.rssMb;
figures.inMemorySeconds = inMemory.seconds;
figures.diskPeakRssMb = onDisk.rssMb;
figures.diskSeconds = onDisk.seconds;
figures.diskSemiSpace8PeakRssMb = onDiskSmallYoung.rssMb;
figures.diskSemiSpace8Seconds = onDiskSmallYoung.seconds;

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
console.log(
  `holding ${HELD_KEYS.toLocaleString('en')} keys: in memory ${inMemory.rssMb} MB peak RSS (${inMemory.seconds.toFixed(1)} s to take them); disk backend ${onDisk.rssMb} MB (${onDisk.seconds.toFixed(1)} s); disk backend with --max-semi-space-size=8 ${onDiskSmallYoung.rssMb} MB (${onDiskSmallYoung.seconds.toFixed(1)} s)`,
);

const file = figures.file as Awaited<ReturnType<typeof measure>>;
const incremental = median(file.all) / median(file.onePercent);
const ratios: BenchRatio[] = [
  {
    name: 'file checkpoint, 100% / 1% of keys changed',
    value: incremental,
    target: '>= 10',
    met: incremental >= 10,
  },
  {
    name: `peak RSS, ${HELD_KEYS.toLocaleString('en')} keys, disk backend (MB)`,
    value: onDisk.rssMb,
    target: '< 500',
    met: onDisk.rssMb < 500,
  },
  {
    name: 'peak RSS, disk / in memory',
    value: onDisk.rssMb / inMemory.rssMb,
  },
];
const written = bench.write(ratios, figures);
console.log(`\nfile checkpoint 100% / 1% changed: ${incremental.toFixed(1)} (target >= 10)`);
console.log(`results: ${written}`);
