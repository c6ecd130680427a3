// Buffer benchmarks (not a test). One stage-to-stage hop — producer → topic → consumer group
// → commit — through @codefeedr/plugin-kafka's buffer on each of its clients (kafkajs and
// @platformatic/kafka, the `client` config key), against a hand-written kafkajs
// producer + eachBatch consumer doing the same work (same batch size, compression, acks=all,
// idempotent producer, a commit per batch), and the same hop hand-written on
// @platformatic/kafka, all on the same broker in the same run. Then latency p50/p99 at a
// fixed offered rate. Then the ceiling: Kafka's own Java perf tools (ProducerPerformance,
// ConsumerPerformance from kafka-tools, which the services harness gathers from Maven Central)
// on the same broker, same record size, acks and partitions (`--no-java` skips them). Then Redis
// Streams (bench/buffers-redis.ts), when that file exists.
//
//   npm run build -w @codefeedr/core -w @codefeedr/plugin-kafka   (the bench imports the builds)
//   npm run bench:buffers -- [--records 200000] [--batch 1000] [--compression none|gzip] [--rate 20000] [--kafka-only] [--no-java]
//   Kafka: CODEFEEDR_KAFKA_BROKERS, else the services harness's 127.0.0.1:9092 (npm run services:up).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  Consumer as PlatformaticConsumer,
  Producer as PlatformaticProducer,
} from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import type * as KafkaPlugin from '@codefeedr/plugin-kafka';
import { benchPayload } from './bench-payload.ts';
import { benchRun } from './bench-results.ts';

const { Kafka, logLevel, CompressionTypes } = kafkajs;

let plugin: typeof KafkaPlugin;
try {
  plugin = await import('@codefeedr/plugin-kafka');
} catch (error) {
  console.error(
    `Cannot load @codefeedr/plugin-kafka (${(error as Error).message}). Build it first: npm run build -w @codefeedr/core -w @codefeedr/plugin-kafka`,
  );
  process.exit(1);
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const RECORDS = Number(option('records', '200000'));
const BATCH = Number(option('batch', '1000'));
const COMPRESSION = option('compression', 'none') as 'none' | 'gzip';
const RATE = Number(option('rate', '20000'));
const LATENCY_MS = Number(option('latency-ms', '3000'));
const PARTITIONS = 3;
const brokers = (process.env.CODEFEEDR_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

interface OutMessage {
  key: string;
  value: Buffer;
  timestamp: number;
}

/** One hop through one client: send batches; `start` delivers the `sentAt` stamps of what the consumer got. */
interface Hop {
  readonly name: string;
  send(messages: OutMessage[]): Promise<void>;
  start(onRecords: (sentAt: number[]) => void): Promise<void>;
  close(): Promise<void>;
}

const sentAtOf = (value: Uint8Array): number =>
  JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString())
    .sentAt as number;

const unique = (what: string) => `cfbench-${what}-${randomBytes(4).toString('hex')}`;

/** The buffer's hop on `client` (the `client` key of its config). */
async function codefeedrHopOn(client: 'kafkajs' | 'platformatic'): Promise<Hop> {
  const topic = unique(`codefeedr-${client}`);
  const buffer = plugin.createKafkaBuffer(
    plugin.kafkaBufferConfigSchema.parse({
      brokers,
      client,
      compression: COMPRESSION,
      logLevel: 'nothing',
    }),
  );
  await buffer.admin.ensureTopic({ name: topic, partitions: PARTITIONS });
  const producer = await buffer.producer({ clientId: topic });
  let running = true;
  let loop: Promise<void> = Promise.resolve();
  return {
    name: `@codefeedr/plugin-kafka (${client})`,
    send: (messages) => producer.send(topic, messages),
    async start(onRecords) {
      const consumer = await buffer.consumer({
        group: topic,
        topics: [topic],
        start: 'earliest',
        maxBufferedRecords: 4 * BATCH,
      });
      loop = (async () => {
        while (running) {
          const batch = await consumer.poll(BATCH, 100);
          if (batch.length === 0) continue;
          const stamps = new Array<number>(batch.length);
          for (let i = 0; i < batch.length; i++) stamps[i] = sentAtOf(batch[i]!.value);
          await consumer.commit();
          onRecords(stamps);
        }
        await consumer.close();
      })();
    },
    async close() {
      running = false;
      await loop;
      await producer.close();
      await buffer.admin.deleteTopic(topic);
      await buffer.close();
    },
  };
}

const codefeedrHop = () => codefeedrHopOn('kafkajs');
const codefeedrPlatformaticHop = () => codefeedrHopOn('platformatic');

/** The same hop written directly on kafkajs, as one would without CodeFeedr. */
async function kafkajsHop(): Promise<Hop> {
  const topic = unique('kafkajs');
  const kafka = new Kafka({ brokers, clientId: topic, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const consumer = kafka.consumer({
    groupId: topic,
    maxWaitTimeInMs: 100,
    heartbeatInterval: 1000,
    sessionTimeout: 10_000,
  });
  const compression = COMPRESSION === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  return {
    name: 'kafkajs, hand-written',
    send: async (messages) =>
      void (await producer.send({
        topic,
        messages: messages.map((m) => ({ ...m, timestamp: String(m.timestamp) })),
        acks: -1,
        compression,
      })),
    async start(onRecords) {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const joined = new Promise<void>((resolve) =>
        consumer.on(consumer.events.GROUP_JOIN, () => resolve()),
      );
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const stamps = batch.messages.map((m) => sentAtOf(m.value!));
          await consumer.commitOffsets([
            {
              topic,
              partition: batch.partition,
              offset: (BigInt(batch.lastOffset()) + 1n).toString(),
            },
          ]);
          onRecords(stamps);
        },
      });
      await joined;
    },
    async close() {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] });
      await admin.disconnect();
    },
  };
}

/** The same hop on @platformatic/kafka (a newer pure-JS client): async-iterated message stream. */
async function platformaticHop(): Promise<Hop> {
  const topic = unique('platformatic');
  const kafka = new Kafka({ brokers, clientId: topic, logLevel: logLevel.NOTHING });
  const admin = kafka.admin(); // topic admin through kafkajs: only the hop is measured
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
  const producer = new PlatformaticProducer({
    clientId: topic,
    bootstrapBrokers: brokers,
    idempotent: true,
    acks: -1,
    compression: COMPRESSION,
  });
  const consumer = new PlatformaticConsumer({
    groupId: topic,
    clientId: `${topic}-c`,
    bootstrapBrokers: brokers,
    maxWaitTime: 100,
  });
  let loop: Promise<void> = Promise.resolve();
  let stream: Awaited<ReturnType<typeof consumer.consume>> | undefined;
  return {
    name: '@platformatic/kafka, hand-written',
    send: async (messages) =>
      void (await producer.send({
        messages: messages.map((m) => ({
          topic,
          key: Buffer.from(m.key),
          value: m.value,
          timestamp: BigInt(m.timestamp),
        })),
      })),
    async start(onRecords) {
      // Its stream has no batches: a batch is BATCH messages or what the stream holds, then one
      // commit of each partition's next offset, as the other hops commit per batch.
      stream = await consumer.consume({
        topics: [topic],
        mode: 'earliest',
        autocommit: false,
        maxWaitTime: 100,
      });
      const messages = stream;
      loop = (async () => {
        let stamps: number[] = [];
        const next = new Map<number, bigint>();
        for await (const message of messages) {
          stamps.push(sentAtOf(message.value as Buffer));
          next.set(message.partition, message.offset + 1n);
          if (stamps.length >= BATCH || messages.readableLength === 0) {
            await consumer.commit({
              offsets: [...next].map(([partition, offset]) => ({
                topic,
                partition,
                offset,
                leaderEpoch: -1,
              })),
            });
            next.clear();
            onRecords(stamps);
            stamps = [];
          }
        }
      })().catch(() => undefined);
    },
    async close() {
      await stream?.close();
      await loop;
      await consumer.close(true);
      await producer.close();
      await admin.deleteTopics({ topics: [topic] });
      await admin.disconnect();
    },
  };
}

/** Producer and consumer run concurrently; throughput = records / time until the last one arrived. */
async function throughput(hop: Hop, records: number): Promise<number> {
  let received = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  await hop.start((stamps) => {
    received += stamps.length;
    if (received >= records) done();
  });
  const started = performance.now();
  for (let sent = 0; sent < records; sent += BATCH) {
    const count = Math.min(BATCH, records - sent);
    const now = Date.now();
    const messages = new Array<OutMessage>(count);
    for (let i = 0; i < count; i++)
      messages[i] = {
        key: `key-${(sent + i) % 64}`,
        value: benchPayload(sent + i, now),
        timestamp: now,
      };
    await hop.send(messages);
  }
  await all;
  return records / ((performance.now() - started) / 1000);
}

interface Latency {
  p50: number;
  p99: number;
}

/** Offers `RATE` records/s in 10 ms ticks for LATENCY_MS and records each record's send→receive time. */
async function latency(hop: Hop): Promise<Latency> {
  const perTick = Math.max(1, Math.round(RATE / 100));
  const ticks = Math.ceil(LATENCY_MS / 10);
  const total = perTick * ticks;
  const latencies: number[] = [];
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  await hop.start((stamps) => {
    const now = Date.now();
    for (const sentAt of stamps) latencies.push(now - sentAt);
    if (latencies.length >= total) done();
  });
  const start = performance.now();
  for (let tick = 0; tick < ticks; tick++) {
    const wait = start + tick * 10 - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const now = Date.now();
    const messages = new Array<OutMessage>(perTick);
    for (let i = 0; i < perTick; i++)
      messages[i] = {
        key: `key-${i % 64}`,
        value: benchPayload(tick * perTick + i, now),
        timestamp: now,
      };
    await hop.send(messages);
  }
  await all;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

async function measure<T>(make: () => Promise<Hop>, body: (hop: Hop) => Promise<T>): Promise<T> {
  const hop = await make();
  try {
    return await body(hop);
  } finally {
    await hop.close();
  }
}

const results = benchRun('buffers');
const hops = [kafkajsHop, codefeedrHop, platformaticHop, codefeedrPlatformaticHop];
const best = new Map<string, number>();
const names = new Map<() => Promise<Hop>, string>();
console.log(
  `Kafka buffer, one hop, ${RECORDS.toLocaleString('en-US')} records, batches of ${BATCH}, compression ${COMPRESSION}, ${PARTITIONS} partitions, brokers ${brokers.join(',')}`,
);
// Warm-up (JIT, connections), then two alternating rounds; the best of each counts.
for (const make of hops)
  await measure(
    make,
    async (hop) => (names.set(make, hop.name), throughput(hop, Math.min(RECORDS, 10 * BATCH))),
  );
for (let round = 0; round < 2; round++) {
  for (const make of hops) {
    const rate = await measure(make, (hop) => throughput(hop, RECORDS));
    best.set(names.get(make)!, Math.max(best.get(names.get(make)!) ?? 0, rate));
  }
}
const baseline = best.get(names.get(kafkajsHop)!)!;
const fmt = (n: number) => `${Math.round(n).toLocaleString('en-US').padStart(9)} records/s`;
for (const [name, rate] of best)
  console.log(`  ${name.padEnd(36)} ${fmt(rate)}  ratio ${(rate / baseline).toFixed(2)}`);
const rateOf = (make: () => Promise<Hop>) => best.get(names.get(make)!)!;
console.log(
  `  buffer on kafkajs / kafkajs hand-written             ${(rateOf(codefeedrHop) / baseline).toFixed(2)}`,
);
console.log(
  `  buffer on platformatic / platformatic hand-written   ${(rateOf(codefeedrPlatformaticHop) / rateOf(platformaticHop)).toFixed(2)}`,
);

console.log(`Latency at ${RATE.toLocaleString('en-US')} records/s offered for ${LATENCY_MS} ms:`);
const latencies = new Map<string, { p50: number; p99: number }>();
for (const make of hops) {
  const figures = await measure(make, latency);
  latencies.set(names.get(make)!, figures);
  console.log(
    `  ${names.get(make)!.padEnd(36)} p50 ${String(figures.p50).padStart(4)} ms  p99 ${String(figures.p99).padStart(4)} ms`,
  );
}
// Judged against the fastest hand-written client of this run (issue 13's target), on the
// client the buffer is fastest on.
const fastestHandWritten = Math.max(rateOf(kafkajsHop), rateOf(platformaticHop));
const fastestBufferHop =
  rateOf(codefeedrPlatformaticHop) > rateOf(codefeedrHop) ? codefeedrPlatformaticHop : codefeedrHop;
const buffer = rateOf(fastestBufferHop);
const bufferP99 = latencies.get(names.get(fastestBufferHop)!)!.p99;
console.log(
  `${names.get(fastestBufferHop)} / fastest hand-written client = ${(buffer / fastestHandWritten).toFixed(2)} (target >= 0.9); its p99 ${bufferP99} ms (target <= 50)`,
);
// ---------------------------------------------------------------------------------------
// The ceiling: Kafka's own Java producer and consumer perf tools on the same broker.

interface JavaCeiling {
  recordSize: number;
  producerRecordsPerSecond: number;
  consumerRecordsPerSecond: number;
  /** A hop runs no faster than its slower side. */
  hopRecordsPerSecond: number;
}

function runJava(classpath: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('java', ['-Xmx512m', '-cp', classpath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code}:\n${out}`)),
    );
  });
}

/** Best of two runs of each tool (a JVM per run, so no warm-up across runs), like the Node hops. */
async function javaCeiling(): Promise<JavaCeiling> {
  const { installKafkaTools } = await import('../test/services/kafka.ts');
  const classpath = await installKafkaTools();
  // The Node hops' record: benchPayload's JSON, whose length varies a little with n.
  let bytes = 0;
  for (let n = 0; n < 1000; n++) bytes += benchPayload(n, Date.now()).length;
  const recordSize = Math.round(bytes / 1000);
  const kafka = new Kafka({ brokers, clientId: 'cfbench-java', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  let producerBest = 0;
  let consumerBest = 0;
  try {
    for (let round = 0; round < 2; round++) {
      const topic = unique('java');
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
      try {
        const produced = await runJava(classpath, [
          'org.apache.kafka.tools.ProducerPerformance',
          '--topic',
          topic,
          '--num-records',
          String(RECORDS),
          '--record-size',
          String(recordSize),
          '--throughput',
          '-1',
          '--producer-props',
          `bootstrap.servers=${brokers.join(',')}`,
          'acks=all',
          'enable.idempotence=true',
          `compression.type=${COMPRESSION}`,
          // Batches as large as the Node hops' (BATCH records spread over the partitions).
          `batch.size=${Math.ceil(BATCH / PARTITIONS) * (recordSize + 16) + 1024}`,
        ]);
        // "200000 records sent, 123456.7 records/sec (23.55 MB/sec), ...": the last such line is
        // the whole run's (the earlier ones are 5 s windows).
        const p = [...produced.matchAll(/(\d+) records sent, ([\d.]+) records\/sec/g)].at(-1);
        if (!p || Number(p[1]) !== RECORDS)
          throw new Error(`ProducerPerformance output not understood:\n${produced}`);
        producerBest = Math.max(producerBest, Number(p[2]));
        const consumed = await runJava(classpath, [
          'org.apache.kafka.tools.ConsumerPerformance',
          '--bootstrap-server',
          brokers.join(','),
          '--topic',
          topic,
          '--messages',
          String(RECORDS),
          '--group',
          topic,
          '--timeout',
          '60000',
        ]);
        // CSV: start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms,
        // fetch.MB.sec, fetch.nMsg.sec. fetch.nMsg.sec leaves out the group join, as the Node
        // hops' clocks do (their consumers join before the clock starts).
        const lines = consumed.split('\n');
        const header = lines.findIndex((l) => l.startsWith('start.time'));
        const row = lines[header + 1]?.split(',').map((c) => c.trim());
        if (header < 0 || !row || Number(row[4]) < RECORDS)
          throw new Error(`ConsumerPerformance output not understood:\n${consumed}`);
        consumerBest = Math.max(consumerBest, Number(row[9]));
      } finally {
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await admin.deleteGroups([topic]).catch(() => undefined);
      }
    }
  } finally {
    await admin.disconnect();
  }
  return {
    recordSize,
    producerRecordsPerSecond: producerBest,
    consumerRecordsPerSecond: consumerBest,
    hopRecordsPerSecond: Math.min(producerBest, consumerBest),
  };
}

let java: JavaCeiling | { error: string } | undefined;
if (!process.argv.includes('--no-java')) {
  console.log(
    `Ceiling: Kafka's Java perf tools, same broker, ${RECORDS.toLocaleString('en-US')} records, acks=all, idempotent, compression ${COMPRESSION}, ${PARTITIONS} partitions (best of two):`,
  );
  try {
    java = await javaCeiling();
    const bufferRate = buffer;
    const row = (label: string, rate: number) => `  ${label.padEnd(42)} ${fmt(rate)}`;
    console.log(
      [
        row(`ProducerPerformance (${java.recordSize}-byte records)`, java.producerRecordsPerSecond),
        row('ConsumerPerformance (fetch rate)', java.consumerRecordsPerSecond),
        row('hop ceiling (the slower of the two)', java.hopRecordsPerSecond),
        `${row(names.get(fastestBufferHop)!, bufferRate)}  buffer / Java ratio ${(bufferRate / java.hopRecordsPerSecond).toFixed(2)}` +
          ` (kafkajs hand-written ${(baseline / java.hopRecordsPerSecond).toFixed(2)})`,
      ].join('\n'),
    );
  } catch (error) {
    java = { error: (error as Error).message };
    console.log(`  Java tools failed: ${java.error}`);
  }
}

const written = results.write(
  [
    {
      name: `Kafka buffer (${names.get(fastestBufferHop)}) / fastest hand-written client`,
      value: buffer / fastestHandWritten,
      target: '>= 0.9',
      met: buffer / fastestHandWritten >= 0.9,
    },
    {
      name: `Kafka buffer p99 ms at ${RATE} records/s`,
      value: bufferP99,
      target: '<= 50',
      met: bufferP99 <= 50,
    },
    ...(java !== undefined && 'hopRecordsPerSecond' in java
      ? [{ name: 'Kafka buffer / Java perf tools', value: buffer / java.hopRecordsPerSecond }]
      : []),
  ],
  {
    records: RECORDS,
    batch: BATCH,
    compression: COMPRESSION,
    partitions: PARTITIONS,
    recordsPerSecond: Object.fromEntries([...best].map(([name, rate]) => [name, Math.round(rate)])),
    latencyMs: Object.fromEntries(latencies),
    javaCeiling: java,
  },
);
console.log(`figures in ${written}`);

// ---------------------------------------------------------------------------------------
// Redis Streams: bench/buffers-redis.ts (the Redis engineer's) runs here when present.
const redisBench = new URL('./buffers-redis.ts', import.meta.url);
if (existsSync(redisBench) && !process.argv.includes('--kafka-only')) {
  console.log('');
  const { benchRedis } = (await import(redisBench.href)) as {
    benchRedis(options: { records: number; batchSize: number }): Promise<unknown>;
  };
  await benchRedis({ records: RECORDS, batchSize: BATCH });
}
process.exit(0);
