// Scale-out benchmark (not a test). One stage over a 6-partition Kafka topic, run by 1 and then by
// 2 worker processes (`pipeline.run({ mode: 'worker', stage, instance })`, core's worker mode, the
// same runtime `codefeedr run <file> --stage <id> --instance <name>` starts). The stage's work is
// CPU-bound and real: each record carries one recorded GitHub event
// (test/fixtures/github/events.ndjson.gz) as its JSON text; the stage parses it, re-serialises it
// and hashes it in a SHA-256 chain (`--rounds` links), and emits a small summary to its own topic.
//
// The input topic is filled before any worker starts. The clock starts when the workers are
// spawned and stops when the stage's consumer group has committed every input offset. Each
// configuration has its own consumer group and output topic over the same input; afterwards the
// output topic is read back and every input sequence number must be in it (no record lost).
// Every topic and consumer group the bench made is deleted at the end.
//
//   npm run build -w @codefeedr/core -w @codefeedr/plugin-kafka   (the bench imports the builds)
//   npm run bench:scale -- [--records 60000] [--rounds 50] [--client kafkajs|platformatic]
//   Kafka: CODEFEEDR_KAFKA_BROKERS, else the services harness's 127.0.0.1:9092 (npm run services:up).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import kafkajs from 'kafkajs';
import { benchRun } from './bench-results.ts';

const PARTITIONS = 6;
const brokers = (process.env.CODEFEEDR_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

// ---------------------------------------------------------------------------------------
// The worker: this same file run with `--worker <settings json>`.

interface WorkerSettings {
  pipeline: string;
  input: string;
  work: string;
  sink: string;
  instance: string;
  rounds: number;
  brokers: string[];
  /** The Kafka buffer's client (`--client kafkajs|platformatic`). */
  client: 'kafkajs' | 'platformatic';
}

interface EventRecord {
  seq: number;
  raw: string;
}

/** The CPU-bound work of one record: parse the event, re-serialise it, a SHA-256 chain over it. */
function summarise(record: EventRecord, rounds: number) {
  const event = JSON.parse(record.raw) as {
    type?: string;
    repo?: { name?: string };
    actor?: { login?: string };
    payload?: { commits?: unknown[] };
  };
  let digest = createHash('sha256').update(JSON.stringify(event)).digest();
  for (let i = 1; i < rounds; i++)
    digest = createHash('sha256').update(digest).update(record.raw).digest();
  return {
    seq: record.seq,
    type: event.type ?? null,
    repo: event.repo?.name ?? null,
    actor: event.actor?.login ?? null,
    commits: event.payload?.commits?.length ?? 0,
    sha256: digest.toString('hex'),
  };
}

async function worker(s: WorkerSettings): Promise<void> {
  const core = await import('@codefeedr/core');
  const { kafkaBuffer } = await import('@codefeedr/plugin-kafka');
  const kafka = await kafkaBuffer.create({
    brokers: s.brokers,
    client: s.client,
    sessionTimeoutMs: 6000,
    heartbeatIntervalMs: 500,
    logLevel: 'nothing',
  });
  const hash = core.defineTransform({
    name: 'scale-bench-hash',
    description: 'Parses and hashes a GitHub event (CPU-bound).',
    configSchema: core.z.object({}),
    inputTypes: [core.Any] as const,
    outputType: core.Any,
    transform: ([events]) => events.map((r) => summarise(r as EventRecord, s.rounds)),
  });
  const pipeline = new core.PipelineBuilder(s.pipeline)
    // The input stage is never run: the bench fills its topic itself.
    .append(core.sequenceInput.create(s.input, { from: 1, to: 1 }))
    .append(hash.create(s.work, {}))
    .append(core.ndjsonFileOutput.create(s.sink, { path: 'unused.ndjson' }))
    .setBuffer(kafka)
    .setStageOptions(s.input, { partitions: PARTITIONS })
    .setStageOptions(s.work, { partitions: PARTITIONS })
    .build();
  const summary = await pipeline.run({
    mode: 'worker',
    stage: s.work,
    instance: s.instance,
    handleSignals: true,
    logger: core.silentLogger,
    checkpointIntervalMs: 200,
  });
  await kafka.close();
  const cpu = process.cpuUsage();
  process.stdout.write(
    `${JSON.stringify({ event: 'stopped', status: summary.status, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
  );
  process.exit(0);
}

function loadEvents(): string[] {
  return gunzipSync(
    readFileSync(join(import.meta.dirname, '..', 'test', 'fixtures', 'github', 'events.ndjson.gz')),
  )
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
}

/** The machine's own ceiling: the same work with no Kafka and no runtime, in this process. */
function cpuProbe(records: number, rounds: number): void {
  const events = loadEvents();
  let sink = 0;
  // Warm-up, so the JIT has compiled the work before the clock starts (the workers run far longer).
  for (let seq = 0; seq < 1000; seq++)
    sink += summarise({ seq, raw: events[seq % events.length]! }, rounds).commits;
  const started = performance.now();
  // Spread over the whole file (7 is prime to its length), so the mix of event sizes is the workers'.
  for (let seq = 0; seq < records; seq++)
    sink += summarise({ seq, raw: events[(seq * 7) % events.length]! }, rounds).commits;
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ recordsPerSecond: records / seconds, sink })}\n`);
}

const workerAt = process.argv.indexOf('--worker');
const probeAt = process.argv.indexOf('--cpu-probe');
if (probeAt >= 0) {
  cpuProbe(Number(process.argv[probeAt + 1]), Number(process.argv[probeAt + 2]));
} else if (workerAt >= 0) {
  await worker(JSON.parse(process.argv[workerAt + 1]!) as WorkerSettings);
} else {
  await main();
}

// ---------------------------------------------------------------------------------------
// The bench

/** CPU seconds so far of the harness's broker (its pid file), when that is the broker in use. */
function brokerCpuSeconds(): number | null {
  try {
    const pid = readFileSync(
      join(import.meta.dirname, '..', '.services', 'kafka', 'kafka.pid'),
      'utf8',
    ).trim();
    // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised command): utime, stime in ticks.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

interface RunFigures {
  workers: number;
  records: number;
  /** Spawn → every input offset committed. */
  seconds: number;
  recordsPerSecond: number;
  /** Between 10 % and 90 % of the input committed: the rate without process start and group join. */
  steadyRecordsPerSecond: number;
  /** Spawn → first committed offset (start-up and group join). */
  firstCommitSeconds: number;
  /** CPU time of the worker processes (whole life) and of the broker (during the run), seconds. */
  workerCpuSeconds: number;
  brokerCpuSeconds: number | null;
  outputRecords: number;
  distinctOutput: number;
  lost: number;
}

async function main(): Promise<void> {
  const RECORDS = Number(option('records', '60000'));
  const ROUNDS = Number(option('rounds', '50'));
  const CLIENT = option('client', 'kafkajs') as WorkerSettings['client'];
  if (CLIENT !== 'kafkajs' && CLIENT !== 'platformatic')
    throw new Error(`--client ${String(CLIENT)}: kafkajs or platformatic`);
  const { PIPELINE_V8_FLAGS } = await import('@codefeedr/core');
  const results = benchRun('scale');
  const run = randomBytes(4).toString('hex');
  const input = `cfbench-scale-in-${run}`;
  const kafka = new kafkajs.Kafka({
    brokers,
    clientId: `cfbench-scale-${run}`,
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const topics = [input];
  const groups: string[] = [];
  const children = new Set<ChildProcess>();
  const cleanUp = async () => {
    for (const child of children) child.kill('SIGKILL');
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
    // One at a time: a group whose last member is still leaving refuses, and takes the others with it.
    for (const group of groups) await admin.deleteGroups([group]).catch(() => undefined);
  };
  try {
    // Pre-fill: the recorded events, cycled, each with its sequence number.
    const events = loadEvents();
    await admin.createTopics({ topics: [{ topic: input, numPartitions: PARTITIONS }] });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let bytes = 0;
    for (let sent = 0; sent < RECORDS; sent += 500) {
      const messages = [];
      for (let seq = sent; seq < Math.min(RECORDS, sent + 500); seq++) {
        const value = JSON.stringify({ seq, raw: events[seq % events.length]! });
        bytes += value.length;
        messages.push({ key: `k${seq}`, value });
      }
      await producer.send({ topic: input, messages, acks: -1 });
    }
    await producer.disconnect();
    const ends = await admin.fetchTopicOffsets(input);
    const filled = ends.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    if (filled !== RECORDS) throw new Error(`input topic holds ${filled} records, not ${RECORDS}`);
    const perPartition = ends.map((p) => Number(p.high) - Number(p.low));
    console.log(
      `Scale-out: one CPU-bound stage (parse + ${ROUNDS}-link SHA-256 chain per GitHub event) over a ${PARTITIONS}-partition topic, ` +
        `${RECORDS.toLocaleString('en-US')} records (${(bytes / RECORDS / 1024).toFixed(1)} KiB avg, per partition ${perPartition.join('/')}), ` +
        `Kafka client ${CLIENT}, brokers ${brokers.join(',')}, ${cpus().length} cores, load ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
    );

    const measure = async (workers: number): Promise<RunFigures> => {
      const ids = {
        pipeline: `cfbench-scale-${run}`,
        input,
        work: `cfbench-scale-work${workers}-${run}`,
        sink: `cfbench-scale-sink${workers}-${run}`,
      };
      topics.push(ids.work, `${ids.work}.dlq`, ids.sink, `${ids.sink}.dlq`);
      groups.push(ids.work);
      const brokerCpuBefore = brokerCpuSeconds();
      const started = performance.now();
      const procs: { child: ChildProcess; exited: Promise<number | null>; log: string[] }[] = [];
      for (let w = 1; w <= workers; w++) {
        const settings: WorkerSettings = {
          ...ids,
          instance: `w${w}`,
          rounds: ROUNDS,
          brokers,
          client: CLIENT,
        };
        // Started as `codefeedr run --stage` starts a worker: with the pipeline V8 flags.
        const child = spawn(
          process.execPath,
          [...PIPELINE_V8_FLAGS, import.meta.filename, '--worker', JSON.stringify(settings)],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        children.add(child);
        const log: string[] = [];
        child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
        child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
        const exited = new Promise<number | null>((resolve) =>
          child.on('exit', (code) => (children.delete(child), resolve(code))),
        );
        procs.push({ child, exited, log });
      }
      // Poll the group's committed offsets until they reach the end of every partition.
      let firstCommit: number | undefined;
      let at10: number | undefined;
      let at90: number | undefined;
      let finished: number | undefined;
      const deadline = started + 10 * 60_000;
      while (finished === undefined) {
        for (const p of procs)
          if (p.child.exitCode !== null)
            throw new Error(`worker exited early (${p.child.exitCode}):\n${p.log.join('')}`);
        if (performance.now() > deadline) throw new Error('stage did not finish in 10 minutes');
        const [offsets] = await admin.fetchOffsets({ groupId: ids.work, topics: [input] });
        const now = performance.now();
        const committed = (offsets?.partitions ?? []).reduce(
          (sum, p) => sum + Math.max(0, Number(p.offset)),
          0,
        );
        if (committed > 0) firstCommit ??= now;
        if (committed >= 0.1 * RECORDS) at10 ??= now;
        if (committed >= 0.9 * RECORDS) at90 ??= now;
        if (committed >= RECORDS) finished = now;
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const brokerCpuAfter = brokerCpuSeconds();
      for (const p of procs) p.child.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      let workerCpuSeconds = 0;
      for (const p of procs) {
        const stopped = p.log
          .join('')
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { event: string; cpuSeconds?: number })
          .find((e) => e.event === 'stopped');
        workerCpuSeconds += stopped?.cpuSeconds ?? Number.NaN;
      }

      // Every input sequence number must be in the stage's output topic.
      const outEnds = await admin.fetchTopicOffsets(ids.work);
      const outputRecords = outEnds.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
      const seen = new Uint8Array(RECORDS);
      let distinct = 0;
      let read = 0;
      const consumer = kafka.consumer({ groupId: `${ids.work}-verify`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topics: [ids.work], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`read ${read} of ${outputRecords} output records in 60 s`)),
          60_000,
        );
        void consumer.run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              read++;
              const seq = (JSON.parse(m.value!.toString()) as { seq: number }).seq;
              if (seq >= 0 && seq < RECORDS && seen[seq] === 0) {
                seen[seq] = 1;
                distinct++;
              }
            }
            if (read >= outputRecords) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      await consumer.disconnect();
      await admin.deleteGroups([`${ids.work}-verify`]).catch(() => undefined);
      const seconds = (finished - started) / 1000;
      return {
        workers,
        records: RECORDS,
        seconds,
        recordsPerSecond: RECORDS / seconds,
        steadyRecordsPerSecond: (0.8 * RECORDS) / ((at90! - at10!) / 1000),
        firstCommitSeconds: (firstCommit! - started) / 1000,
        workerCpuSeconds,
        brokerCpuSeconds:
          brokerCpuBefore === null || brokerCpuAfter === null
            ? null
            : brokerCpuAfter - brokerCpuBefore,
        outputRecords,
        distinctOutput: distinct,
        lost: RECORDS - distinct,
      };
    };

    // The same transform with no Kafka: 1 process, then 2 at once (what the cores allow).
    const probe = async (processes: number): Promise<number> => {
      const rates = await Promise.all(
        Array.from(
          { length: processes },
          () =>
            new Promise<number>((resolve, reject) => {
              const child = spawn(
                process.execPath,
                [import.meta.filename, '--cpu-probe', String(PROBE_RECORDS), String(ROUNDS)],
                { stdio: ['ignore', 'pipe', 'inherit'] },
              );
              children.add(child);
              let out = '';
              child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
              child.on('exit', (code) => {
                children.delete(child);
                if (code !== 0) reject(new Error(`cpu probe exited ${code}`));
                else resolve((JSON.parse(out) as { recordsPerSecond: number }).recordsPerSecond);
              });
            }),
        ),
      );
      return rates.reduce((a, b) => a + b, 0);
    };
    const PROBE_RECORDS = Math.min(RECORDS, 8000);
    const probeOne = await probe(1);
    const probeTwo = await probe(2);
    const cpuRatio = probeTwo / probeOne;
    console.log(
      `  no Kafka, the transform alone (${PROBE_RECORDS} records per process): 1 process ${Math.round(probeOne).toLocaleString('en-US')} records/s, ` +
        `2 at once ${Math.round(probeTwo).toLocaleString('en-US')} records/s together: the cores allow ${cpuRatio.toFixed(2)}×`,
    );

    const runs: RunFigures[] = [];
    for (const workers of [1, 2]) {
      const figures = await measure(workers);
      runs.push(figures);
      console.log(
        `  ${workers} worker${workers > 1 ? 's' : ' '}  ${Math.round(figures.recordsPerSecond).toLocaleString('en-US').padStart(7)} records/s ` +
          `(${figures.seconds.toFixed(1)} s from spawn; first commit at ${figures.firstCommitSeconds.toFixed(1)} s; ` +
          `10→90 % at ${Math.round(figures.steadyRecordsPerSecond).toLocaleString('en-US')} records/s)  ` +
          `CPU s: workers ${figures.workerCpuSeconds.toFixed(1)} (${(figures.workerCpuSeconds / figures.seconds).toFixed(2)} cores), broker ${figures.brokerCpuSeconds?.toFixed(1) ?? '?'}  ` +
          `output ${figures.outputRecords} records, ${figures.distinctOutput} distinct, lost ${figures.lost}`,
      );
    }
    const [one, two] = runs as [RunFigures, RunFigures];
    const ratio = two.recordsPerSecond / one.recordsPerSecond;
    const steadyRatio = two.steadyRecordsPerSecond / one.steadyRecordsPerSecond;
    const lost = one.lost + two.lost;
    console.log(
      `  2 workers / 1 worker: ${ratio.toFixed(2)} from spawn (target >= 1.8) ${ratio >= 1.8 ? 'OK' : 'BELOW TARGET'}; ` +
        `${steadyRatio.toFixed(2)} over 10→90 % of the input; records lost: ${lost}`,
    );
    const written = results.write(
      [
        {
          name: '2 workers / 1 worker records/s',
          value: ratio,
          target: '>= 1.8',
          met: ratio >= 1.8,
        },
        { name: '2 / 1 workers, 10→90 % of input', value: steadyRatio },
        { name: '2 / 1 processes, transform alone (no Kafka)', value: cpuRatio },
        { name: 'records lost', value: lost, target: '= 0', met: lost === 0 },
      ],
      {
        client: CLIENT,
        partitions: PARTITIONS,
        records: RECORDS,
        rounds: ROUNDS,
        runs,
        transformAlone: {
          recordsPerProcess: PROBE_RECORDS,
          oneProcessRecordsPerSecond: probeOne,
          twoProcessesRecordsPerSecond: probeTwo,
        },
      },
    );
    console.log(`figures in ${written}`);
    if (lost > 0) process.exitCode = 1;
  } finally {
    await cleanUp();
    await admin.disconnect();
  }
}
