// Redis Streams buffer benchmark: one stage-to-stage hop (producer → stream → consumer group
// → commit) through @codefeedr/plugin-redis, against a hand-written ioredis baseline doing
// the same work with the same batch size (pipelined XADD MAXLEN ~, XREADGROUP, XACK),
// measured in the same run. Prints throughput ratio and latency percentiles.
//
//   npm run build -w @codefeedr/core -w @codefeedr/plugin-redis   (the bench imports the builds)
//   node bench/buffers-redis.ts [records] [batchSize]            (Redis: CODEFEEDR_REDIS_URL or npm run services:up)
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { RedisBuffer } from '@codefeedr/plugin-redis';
import { benchPayload } from './bench-payload.ts';

export interface RedisBenchOptions {
  records: number;
  batchSize: number;
  /** Default: CODEFEEDR_REDIS_URL, else the services harness's redis://127.0.0.1:6390. */
  url?: string;
  /** Records per second offered in the latency run (default 20,000). */
  latencyRate?: number;
  /** Length of the latency run in ms (default 3,000). */
  latencyDurationMs?: number;
}

export interface LatencyFigures {
  p50Ms: number;
  p99Ms: number;
  records: number;
}

export interface RedisBenchResult {
  records: number;
  batchSize: number;
  codefeedrRecordsPerSecond: number;
  baselineRecordsPerSecond: number;
  /** codefeedr / baseline throughput; target >= 0.8. */
  ratio: number;
  latencyRate: number;
  codefeedrLatency: LatencyFigures;
  baselineLatency: LatencyFigures;
}

const MAX_LEN = 1_000_000;

/** One hop through one implementation: a producer `send(batch)` and a consumer `receive()` returning sentAt stamps. */
interface Hop {
  send(messages: { key: string; value: Uint8Array; timestamp: number }[]): Promise<void>;
  /** Polls one batch, commits it, returns the `sentAt` of each record. */
  receive(maxWaitMs: number): Promise<number[]>;
  close(): Promise<void>;
}

async function codefeedrHop(url: string, batchSize: number): Promise<Hop> {
  const prefix = `cfbench-${randomBytes(4).toString('hex')}`;
  const buffer = await RedisBuffer.connect({ url, prefix, maxLen: MAX_LEN });
  await buffer.admin.ensureTopic({ name: 'hop', partitions: 1 });
  const producer = await buffer.producer({ clientId: 'bench' });
  const consumer = await buffer.consumer({ group: 'bench', topics: ['hop'], start: 'earliest' });
  return {
    send: (messages) => producer.send('hop', messages),
    async receive(maxWaitMs) {
      const batch = await consumer.poll(batchSize, maxWaitMs);
      if (batch.length > 0) await consumer.commit();
      return batch.map((m) => JSON.parse(Buffer.from(m.value).toString()).sentAt as number);
    },
    async close() {
      await consumer.close();
      await buffer.admin.deleteTopic('hop');
      await buffer.close();
    },
  };
}

/** The same hop written directly against ioredis, as one would without CodeFeedr. */
async function baselineHop(url: string, batchSize: number): Promise<Hop> {
  const stream = `cfbench-baseline-${randomBytes(4).toString('hex')}`;
  const writer = new Redis(url);
  const reader = new Redis(url);
  await writer.xgroup('CREATE', stream, 'bench', '0', 'MKSTREAM');
  return {
    async send(messages) {
      const pipeline = writer.pipeline();
      for (const m of messages)
        pipeline.xadd(
          stream,
          'MAXLEN',
          '~',
          MAX_LEN,
          '*',
          'v',
          Buffer.from(m.value),
          't',
          m.timestamp,
          'k',
          m.key,
        );
      await pipeline.exec();
    },
    async receive(maxWaitMs) {
      // callBuffer: ioredis' typings lack xreadgroupBuffer, and values must stay bytes.
      const reply = (await reader.callBuffer('XREADGROUP', [
        'GROUP',
        'bench',
        'baseline',
        'COUNT',
        batchSize,
        'BLOCK',
        maxWaitMs,
        'STREAMS',
        stream,
        '>',
      ])) as [Buffer, [Buffer, Buffer[]][]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) return [];
      await writer.xack(stream, 'bench', ...entries.map(([id]) => id));
      return entries.map(([, fields]) => JSON.parse(fields[1]!.toString()).sentAt as number);
    },
    async close() {
      await writer.del(stream);
      writer.disconnect();
      reader.disconnect();
    },
  };
}

/** Producer and consumer run concurrently; throughput = records / time until the last one is consumed. */
async function throughput(hop: Hop, records: number, batchSize: number): Promise<number> {
  const started = performance.now();
  const producing = (async () => {
    for (let sent = 0; sent < records; sent += batchSize) {
      const count = Math.min(batchSize, records - sent);
      const now = Date.now();
      await hop.send(
        Array.from({ length: count }, (_, i) => ({
          key: `key-${(sent + i) % 64}`,
          value: benchPayload(sent + i, now),
          timestamp: now,
        })),
      );
    }
  })();
  let received = 0;
  while (received < records) received += (await hop.receive(100)).length;
  await producing;
  return records / ((performance.now() - started) / 1000);
}

/** Offers `rate` records/s in 10 ms ticks and records each record's send→receive latency. */
async function latency(hop: Hop, rate: number, durationMs: number): Promise<LatencyFigures> {
  const perTick = Math.max(1, Math.round(rate / 100));
  const ticks = Math.ceil(durationMs / 10);
  const total = perTick * ticks;
  const latencies: number[] = [];
  const producing = (async () => {
    const start = performance.now();
    for (let tick = 0; tick < ticks; tick++) {
      const due = start + tick * 10;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const now = Date.now();
      await hop.send(
        Array.from({ length: perTick }, (_, i) => ({
          key: `key-${i % 64}`,
          value: benchPayload(tick * perTick + i, now),
          timestamp: now,
        })),
      );
    }
  })();
  while (latencies.length < total) {
    const stamps = await hop.receive(100);
    const now = Date.now();
    for (const sentAt of stamps) latencies.push(now - sentAt);
  }
  await producing;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { p50Ms: at(0.5), p99Ms: at(0.99), records: total };
}

export async function benchRedis(options: RedisBenchOptions): Promise<RedisBenchResult> {
  const url = options.url ?? process.env.CODEFEEDR_REDIS_URL ?? 'redis://127.0.0.1:6390';
  const { records, batchSize } = options;
  const latencyRate = options.latencyRate ?? 20_000;
  const latencyDurationMs = options.latencyDurationMs ?? 3_000;
  const run = async (
    make: (url: string, batchSize: number) => Promise<Hop>,
    body: (hop: Hop) => Promise<number>,
  ) => {
    const hop = await make(url, batchSize);
    try {
      return await body(hop);
    } finally {
      await hop.close();
    }
  };
  // Warm-up of both paths (JIT, connections), then alternate so drift affects both alike.
  const warm = Math.min(records, 5 * batchSize);
  await run(codefeedrHop, (hop) => throughput(hop, warm, batchSize));
  await run(baselineHop, (hop) => throughput(hop, warm, batchSize));
  const codefeedrRuns: number[] = [];
  const baselineRuns: number[] = [];
  for (let round = 0; round < 2; round++) {
    baselineRuns.push(await run(baselineHop, (hop) => throughput(hop, records, batchSize)));
    codefeedrRuns.push(await run(codefeedrHop, (hop) => throughput(hop, records, batchSize)));
  }
  const codefeedrRecordsPerSecond = Math.max(...codefeedrRuns);
  const baselineRecordsPerSecond = Math.max(...baselineRuns);
  let codefeedrLatency: LatencyFigures | undefined;
  let baselineLatency: LatencyFigures | undefined;
  await run(
    baselineHop,
    async (hop) => ((baselineLatency = await latency(hop, latencyRate, latencyDurationMs)), 0),
  );
  await run(
    codefeedrHop,
    async (hop) => ((codefeedrLatency = await latency(hop, latencyRate, latencyDurationMs)), 0),
  );
  const result: RedisBenchResult = {
    records,
    batchSize,
    codefeedrRecordsPerSecond,
    baselineRecordsPerSecond,
    ratio: codefeedrRecordsPerSecond / baselineRecordsPerSecond,
    latencyRate,
    codefeedrLatency: codefeedrLatency!,
    baselineLatency: baselineLatency!,
  };
  const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')} records/s`;
  console.log(
    `Redis Streams buffer, one hop, ${records.toLocaleString('en-US')} records, batches of ${batchSize}:`,
  );
  console.log(`  @codefeedr/plugin-redis  ${rate(codefeedrRecordsPerSecond)}`);
  console.log(`  ioredis baseline         ${rate(baselineRecordsPerSecond)}`);
  console.log(`  ratio                    ${result.ratio.toFixed(2)} (target >= 0.80)`);
  console.log(`Latency at ${latencyRate.toLocaleString('en-US')} records/s offered:`);
  console.log(
    `  @codefeedr/plugin-redis  p50 ${result.codefeedrLatency.p50Ms} ms, p99 ${result.codefeedrLatency.p99Ms} ms`,
  );
  console.log(
    `  ioredis baseline         p50 ${result.baselineLatency.p50Ms} ms, p99 ${result.baselineLatency.p99Ms} ms`,
  );
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const records = Number(process.argv[2] ?? 100_000);
  const batchSize = Number(process.argv[3] ?? 500);
  benchRedis({ records, batchSize }).catch((error: unknown) => {
    console.error(`Redis bench failed: ${(error as Error).message}`);
    console.error('Is Redis up? Start it with `npm run services:up` or set CODEFEEDR_REDIS_URL.');
    process.exitCode = 1;
  });
}
