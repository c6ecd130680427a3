// Benchmarks of @codefeedr/core's dataflow (not a test). Run: npm run build -w @codefeedr/core && npm run bench:core
// Options: --records N (default 5,000,000), --rounds N (default 5), --seconds N (backpressure run, default 60), --batch N (default 1000).
//
// 1. Throughput of one keyed pipeline, map -> filter -> keyBy -> reduce, over N in-memory records:
//    (a) the inline runtime (pipeline.run({ mode: 'inline' })) with a sequence source and a counting sink,
//    (b) a hand-written loop doing the same work (same records in, same running totals out),
//    (c) Node object-mode streams (stream.pipeline of Transforms),
//    plus the compiled operator chain driven directly, to show where the time goes.
//    Prints records/s and the ratios: targets inline >= 0.5 x hand-written, >= 10 x streams.
// 2. Backpressure: a fast unbounded source into a slow sink for --seconds; peak RSS must stay < 300 MB.
import { spawnSync } from 'node:child_process';
import { Readable, Transform, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pipeline as streamPipeline } from 'node:stream/promises';
import type * as CoreModule from '@codefeedr/core';
import type * as InternalModule from '@codefeedr/core/internal';
import type { DataStream, StreamRecord } from '@codefeedr/core';
import { benchRun, type BenchRatio } from './bench-results.ts';

type Core = typeof CoreModule;
let core: Core;
let internal: typeof InternalModule;
try {
  core = await import('@codefeedr/core');
  internal = await import('@codefeedr/core/internal');
} catch (error) {
  console.error(
    `Cannot load @codefeedr/core (${(error as Error).message}). Build it first: npm run build -w @codefeedr/core`,
  );
  process.exit(1);
}
const { PipelineBuilder, Any, defineOutput, defineTransform, sequenceInput, z } = core;
const { compileTransform } = internal;

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RECORDS = option('records', 5_000_000);
const SECONDS = option('seconds', 60);
const BATCH = option('batch', 1000);
/** Alternating rounds of every variant; the figures are their medians. */
const ROUNDS = option('rounds', 5);
const onlyIndex = process.argv.indexOf('--only');
/** `--only throughput` or `--only backpressure` runs one part. */
const ONLY = onlyIndex >= 0 ? process.argv[onlyIndex + 1] : undefined;
const KEYS = 1000;

// The work, shared by every variant: x -> a small measure (7x mod 1000, like commits per push),
// keep evens, key x mod 1000, running sum per key. Sums stay below 2^30 (V8 small integers):
// bench/README.md shows what happens to every variant when they do not.
const measure = (x: number) => (x * 7) % 1000;
const even = (x: number) => x % 2 === 0;
// Keys are existing strings, as in real records (a repo name read from the event), not built per record.
const KEY_NAMES = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
const keyOf = (x: number) => KEY_NAMES[x % KEYS]!;
const add = (a: number, b: number) => a + b;
/** Every variant must agree on this: number of outputs and the sum of every output value (cheap: no Map). */
interface Result {
  outputs: number;
  checksum: number;
}

/** Records per run: RECORDS when measuring, a tenth for the warm-up pass. */
let count = RECORDS;

function keyedSum(stream: DataStream<number>): DataStream<number> {
  return stream.map(measure).filter(even).keyBy(keyOf).reduce(add);
}

function timed(name: string, run: () => Result | Promise<Result>) {
  return async () => {
    const started = performance.now();
    const result = await run();
    const seconds = (performance.now() - started) / 1000;
    const rate = count / seconds;
    console.log(
      `${name.padEnd(34)} ${(rate / 1e6).toFixed(2).padStart(7)} M records/s  (${seconds.toFixed(2)} s, ${result.outputs} outputs)`,
    );
    return { rate, result };
  };
}

/** (b) The same work, hand-written: batches of fresh records in, running-total records out. */
function handWritten(): Result {
  const sums = new Map<string, number>();
  let outputs = 0;
  let checksum = 0;
  for (let from = 0; from < count; from += BATCH) {
    const n = Math.min(BATCH, count - from);
    const batch: StreamRecord<number>[] = new Array(n);
    const now = Date.now();
    for (let i = 0; i < n; i++)
      batch[i] = { key: undefined, value: from + i, timestamp: now, headers: undefined };
    const out: StreamRecord<number>[] = [];
    for (let i = 0; i < n; i++) {
      const r = batch[i]!;
      const x = measure(r.value);
      if (!even(x)) continue;
      const key = keyOf(x);
      const previous = sums.get(key);
      const total = previous === undefined ? x : add(previous, x);
      sums.set(key, total);
      out.push({ key, value: total, timestamp: r.timestamp, headers: r.headers });
    }
    outputs += out.length;
    for (let i = 0; i < out.length; i++) checksum += out[i]!.value;
  }
  return { outputs, checksum };
}

const ctx = {
  stageId: 'bench',
  pipelineName: 'bench',
  logger: { debug() {}, info() {}, warn() {}, error() {}, child: () => ctx.logger },
  signal: new AbortController().signal,
};

const sumTransform = defineTransform({
  name: 'keyed-sum',
  description: 'map -> filter -> keyBy -> reduce',
  configSchema: z.object({}),
  inputTypes: [Any] as const,
  outputType: Any,
  transform: ([numbers]) => keyedSum(numbers as DataStream<number>) as DataStream<unknown>,
});

/** The compiled chain alone, fed batches like the runtime would. */
function compiledChain(): Result {
  const chain = compileTransform(sumTransform.create('sum'), ctx, {
    deadLetter: () => {},
    retries: 0,
  });
  let checksum = 0;
  let outputs = 0;
  for (let from = 0; from < count; from += BATCH) {
    const n = Math.min(BATCH, count - from);
    const batch: StreamRecord<number>[] = new Array(n);
    const now = Date.now();
    for (let i = 0; i < n; i++)
      batch[i] = { key: undefined, value: from + i, timestamp: now, headers: undefined };
    const out = chain.processBatch(0, 'bench', batch);
    outputs += out.length;
    for (let i = 0; i < out.length; i++) checksum += out[i]!.value as number;
  }
  return { outputs, checksum };
}

interface Counts {
  outputs: number;
  checksum: number;
}

/** A sink that counts records and sums their values (the checksum); `delayMs` makes it slow. */
function countingOutput(state: Counts, delayMs = 0) {
  return defineOutput({
    name: 'counting',
    description: 'Counts records.',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({
      async write(batch: readonly StreamRecord[]) {
        state.outputs += batch.length;
        if (delayMs === 0)
          for (let i = 0; i < batch.length; i++) state.checksum += batch[i]!.value as number;
        else await new Promise((resolve) => setTimeout(resolve, delayMs));
      },
      async flush() {},
      async close() {},
    }),
  });
}

/** (a) The inline runtime: sequence source -> fused transform -> counting sink. */
async function inlineRuntime(): Promise<Result> {
  const state: Counts = { outputs: 0, checksum: 0 };
  const pipeline = new PipelineBuilder('bench-inline')
    .append(sequenceInput.create('numbers', { from: 0, to: count - 1 }))
    .append(sumTransform.create('sum'))
    .append(countingOutput(state).create('count'))
    .build();
  await pipeline.run({ mode: 'inline', batchSize: BATCH, checkpointIntervalMs: 60_000 });
  return { outputs: state.outputs, checksum: state.checksum };
}

/** (c) Node object-mode streams, one object per record through each Transform. */
async function objectStreams(): Promise<Result> {
  const sums = new Map<string, number>();
  let outputs = 0;
  let checksum = 0;
  function* numbers() {
    const now = Date.now();
    for (let i = 0; i < count; i++)
      yield {
        key: undefined,
        value: i,
        timestamp: now,
        headers: undefined,
      } as StreamRecord<number>;
  }
  await streamPipeline(
    Readable.from(numbers()),
    new Transform({
      objectMode: true,
      transform(r: StreamRecord<number>, _enc, done) {
        done(null, {
          key: r.key,
          value: measure(r.value),
          timestamp: r.timestamp,
          headers: r.headers,
        });
      },
    }),
    new Transform({
      objectMode: true,
      transform(r: StreamRecord<number>, _enc, done) {
        done(null, even(r.value) ? r : undefined);
      },
    }),
    new Transform({
      objectMode: true,
      transform(r: StreamRecord<number>, _enc, done) {
        const key = keyOf(r.value);
        const previous = sums.get(key);
        const total = previous === undefined ? r.value : add(previous, r.value);
        sums.set(key, total);
        done(null, { key, value: total, timestamp: r.timestamp, headers: r.headers });
      },
    }),
    new Writable({
      objectMode: true,
      write(r: StreamRecord<number>, _enc, done) {
        outputs++;
        checksum += r.value;
        done();
      },
    }),
  );
  return { outputs, checksum };
}

/** 2. Fast unbounded source -> map -> slow sink (10 ms per batch): RSS must stay bounded. */
async function backpressure(): Promise<{ peakMb: number; outputs: number }> {
  const state: Counts = { outputs: 0, checksum: 0 };
  const pipeline = new PipelineBuilder('bench-backpressure')
    .append(sequenceInput.create('numbers', {}))
    .append(
      defineTransform({
        name: 'payload',
        description: 'Makes each record carry ~100 bytes.',
        configSchema: z.object({}),
        inputTypes: [Any] as const,
        outputType: Any,
        transform: ([n]) =>
          (n as DataStream<number>).map((x) => ({
            x,
            text: `record number ${x} `.padEnd(100, '.'),
          })),
      }).create('payload'),
    )
    .append(countingOutput(state, 10).create('slow'))
    .build();
  const stop = new AbortController();
  let peak = process.memoryUsage().rss;
  const started = Date.now();
  let lastReport = started;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage().rss;
    peak = Math.max(peak, rss);
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      console.log(
        `  ${Math.round((lastReport - started) / 1000)} s: RSS ${(rss / 2 ** 20).toFixed(0)} MB, peak ${(peak / 2 ** 20).toFixed(0)} MB, ${state.outputs.toLocaleString('en')} delivered`,
      );
    }
  }, 100);
  const timer = setTimeout(() => stop.abort(), SECONDS * 1000);
  try {
    await pipeline.run({
      mode: 'inline',
      batchSize: BATCH,
      signal: stop.signal,
      checkpointIntervalMs: 60_000,
    });
  } finally {
    clearInterval(sampler);
    clearTimeout(timer);
  }
  return { peakMb: peak / 2 ** 20, outputs: state.outputs };
}

if (ONLY !== 'backpressure')
  console.log(
    `@codefeedr/core dataflow benchmark — ${RECORDS.toLocaleString('en')} records, batches of ${BATCH}, node ${process.version}`,
  );
const run = benchRun('core');
const ratios: BenchRatio[] = [];
const figures: Record<string, unknown> = {};
/** The backpressure child's figures, on one stdout line for the parent to record. */
const BACKPRESSURE_LINE = 'bench:core backpressure figures ';
if (ONLY !== 'backpressure') {
  // Warm-up pass: let the JIT compile every variant before anything is measured.
  count = Math.max(1000, Math.floor(RECORDS / 10));
  for (const variant of [handWritten, compiledChain, inlineRuntime, objectStreams]) await variant();
  count = RECORDS;
  // ROUNDS alternating rounds of every variant; each figure below is the median over them (one
  // round takes a fraction of a second, so a single one is at the machine's mercy).
  const perRound: { hand: number; chain: number; inline: number; streams: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} of ${ROUNDS}`);
    const hand = await timed('(b) hand-written loop', handWritten)();
    const chain = await timed('    compiled chain, driven directly', compiledChain)();
    const inline = await timed('(a) inline runtime', inlineRuntime)();
    const streams = await timed('(c) object-mode streams', objectStreams)();
    for (const [name, r] of [
      ['compiled chain', chain],
      ['inline runtime', inline],
      ['object-mode streams', streams],
    ] as const) {
      if (r.result.outputs !== hand.result.outputs || r.result.checksum !== hand.result.checksum) {
        console.error(
          `MISMATCH: ${name} computed ${JSON.stringify(r.result)}, hand-written ${JSON.stringify(hand.result)}`,
        );
        process.exitCode = 1;
      }
    }
    perRound.push({
      hand: hand.rate,
      chain: chain.rate,
      inline: inline.rate,
      streams: streams.rate,
    });
  }
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const medianOf = (pick: (r: (typeof perRound)[number]) => number) => median(perRound.map(pick));
  const hand = { rate: medianOf((r) => r.hand) };
  const chain = { rate: medianOf((r) => r.chain) };
  const inline = { rate: medianOf((r) => r.inline) };
  const streams = { rate: medianOf((r) => r.streams) };
  // Ratios: the median of each round's ratio (both sides measured moments apart).
  const inlineToHand = medianOf((r) => r.inline / r.hand);
  const inlineToStreams = medianOf((r) => r.inline / r.streams);
  const chainToHand = medianOf((r) => r.chain / r.hand);
  console.log(
    `medians of ${ROUNDS} rounds: hand-written ${(hand.rate / 1e6).toFixed(2)}, chain ${(chain.rate / 1e6).toFixed(2)}, inline ${(inline.rate / 1e6).toFixed(2)}, streams ${(streams.rate / 1e6).toFixed(2)} M records/s`,
  );
  ratios.push(
    {
      name: 'inline / hand-written',
      value: inlineToHand,
      target: '>= 0.8',
      met: inlineToHand >= 0.8,
    },
    {
      name: 'inline / object streams',
      value: inlineToStreams,
      target: '>= 10',
      met: inlineToStreams >= 10,
    },
    { name: 'chain / hand-written', value: chainToHand },
  );
  Object.assign(figures, {
    records: RECORDS,
    batch: BATCH,
    rounds: ROUNDS,
    recordsPerSecond: {
      handWritten: Math.round(hand.rate),
      compiledChain: Math.round(chain.rate),
      inline: Math.round(inline.rate),
      objectStreams: Math.round(streams.rate),
    },
  });
  const ratio = (value: number) => value.toFixed(2);
  console.log(`inline / hand-written   = ${ratio(inlineToHand)}  (target >= 0.8)`);
  console.log(`inline / object streams = ${ratio(inlineToStreams)}  (target >= 10)`);
  console.log(`chain  / hand-written   = ${ratio(chainToHand)}`);
  console.log(`chain  / object streams = ${ratio(medianOf((r) => r.chain / r.streams))}`);
  console.log(`hand   / object streams = ${ratio(medianOf((r) => r.hand / r.streams))}`);
}
if (ONLY === undefined) {
  // A fresh process each, so the heap left by the throughput runs does not count against RSS:
  // one with node's defaults, one with the V8 flags `codefeedr run` starts with (the target).
  for (const [label, flags] of [
    ['node defaults', []],
    ['PIPELINE_V8_FLAGS, as `codefeedr run`', core.PIPELINE_V8_FLAGS],
  ] as const) {
    console.log(`backpressure with ${label} (${flags.join(' ') || 'no flags'}):`);
    const child = spawnSync(
      process.execPath,
      [
        ...flags,
        fileURLToPath(import.meta.url),
        '--only',
        'backpressure',
        '--seconds',
        String(SECONDS),
        '--batch',
        String(BATCH),
      ],
      { stdio: ['inherit', 'pipe', 'inherit'], encoding: 'utf8' },
    );
    for (const line of (child.stdout ?? '').split('\n')) {
      if (line.startsWith(BACKPRESSURE_LINE)) {
        const bp = JSON.parse(line.slice(BACKPRESSURE_LINE.length)) as {
          peakMb: number;
          outputs: number;
        };
        const judged = flags.length > 0;
        figures[judged ? 'backpressure' : 'backpressureNodeDefaults'] = {
          seconds: SECONDS,
          flags,
          ...bp,
        };
        ratios.push({
          name: `backpressure peak RSS (MB), ${label}`,
          value: bp.peakMb,
          ...(judged ? { target: '< 150', met: bp.peakMb < 150 } : {}),
        });
      } else if (line !== '') console.log(line);
    }
    if (child.status !== 0) process.exitCode = child.status ?? 1;
  }
} else if (ONLY === 'backpressure') {
  console.log(`backpressure: unbounded source -> slow sink (10 ms per batch) for ${SECONDS} s ...`);
  const bp = await backpressure();
  console.log(
    `peak RSS ${bp.peakMb.toFixed(0)} MB (target < 150 MB with PIPELINE_V8_FLAGS; fails above 300 MB), ${bp.outputs.toLocaleString('en')} records delivered`,
  );
  console.log(`${BACKPRESSURE_LINE}${JSON.stringify({ peakMb: bp.peakMb, outputs: bp.outputs })}`);
  if (bp.peakMb >= 300) process.exitCode = 1;
}
if (ONLY !== 'backpressure') console.log(`figures in ${run.write(ratios, figures)}`);
