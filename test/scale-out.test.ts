// Scale-out: three worker processes of one stage (`pipeline.run({ mode: 'worker', stage })`)
// share a 6-partition Kafka topic through their consumer group. One is SIGKILLed and its
// partitions move to the other two; it starts again and they rebalance back. Every record
// reaches the sink at least once. Workers report their assignments as JSON lines.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaBuffer, kafkaBufferConfigSchema } from '@codefeedr/plugin-kafka';
import { waitFor, WorkerProcess } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
// Under the repo root so the worker's imports resolve through its node_modules.
const dir = join(import.meta.dirname, '..', '.tmp', `scale-out-${run}`);
const PARTITIONS = 6;

// The worker program: the pipeline's `work` stage, run as one worker. The Buffer handed to
// the runtime is the Kafka buffer with a tap on consumer assignments (printed as JSON).
const workerSource = `
import { PipelineBuilder, ndjsonFileOutput, sequenceInput, silentLogger } from '@codefeedr/core';
import { kafkaBuffer } from '@codefeedr/plugin-kafka';

const s = JSON.parse(process.env.SCALE_OUT_WORKER);
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\\n');
const kafka = await kafkaBuffer.create({ brokers: s.brokers, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, logLevel: 'nothing' });
const tapped = {
  kind: kafka.kind,
  capabilities: kafka.capabilities,
  admin: kafka.admin,
  producer: (options) => kafka.producer(options),
  consumer: (options) =>
    kafka.consumer({
      ...options,
      onAssignmentChange(assigned) {
        options.onAssignmentChange?.(assigned);
        emit({ event: 'assignment', partitions: assigned.map((tp) => tp.partition).sort((a, b) => a - b) });
      },
    }),
  close: () => kafka.close(),
};
const pipeline = new PipelineBuilder(s.pipeline)
  .append(sequenceInput.create(s.numbers, { from: 1, to: 1 }))
  .append(ndjsonFileOutput.create(s.work, { path: s.sinkPath }))
  .setBuffer(tapped)
  .setStageOptions(s.numbers, { partitions: ${PARTITIONS} })
  .build();
const summary = await pipeline.run({
  mode: 'worker', stage: s.work, instance: s.instance,
  handleSignals: true, logger: silentLogger, checkpointIntervalMs: 200,
});
await kafka.close();
emit({ event: 'stopped', status: summary.status });
process.exit(0);
`;

interface Worker {
  name: string;
  process: WorkerProcess;
}

function latestAssignment(worker: Worker): number[] | undefined {
  const events = worker.process.events.filter((e) => e.event === 'assignment');
  return events.at(-1)?.partitions as number[] | undefined;
}

/** True when the given workers' latest assignments split all partitions `share` each, disjointly. */
function spread(workers: Worker[], share: number): boolean {
  const assignments = workers.map(latestAssignment);
  if (assignments.some((a) => a === undefined || a.length !== share)) return false;
  const all = assignments.flatMap((a) => a!);
  return new Set(all).size === PARTITIONS && all.length === PARTITIONS;
}

function sinkValues(): number[] {
  const values: number[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ndjson'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line.trim() !== '') values.push(JSON.parse(line) as number);
    }
  }
  return values;
}

const started: Worker[] = [];
afterAll(async () => {
  await Promise.all(started.map((w) => w.process.stop(5_000)));
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
});

describe('scale-out through Kafka consumer groups', () => {
  it('spreads 6 partitions over 3 workers, moves a killed worker’s partitions to the others and back, losing nothing', async () => {
    mkdirSync(dir, { recursive: true });
    const script = join(dir, 'worker.ts');
    writeFileSync(script, workerSource);
    const ids = { pipeline: `scale-${run}`, numbers: `numbers-${run}`, work: `work-${run}` };
    const start = (name: string): Worker => {
      const settings = {
        ...ids,
        brokers,
        instance: name,
        sinkPath: join(dir, `sink-${name}-${started.length}.ndjson`),
      };
      const worker = {
        name,
        process: new WorkerProcess({
          script,
          env: { ...process.env, SCALE_OUT_WORKER: JSON.stringify(settings) },
        }),
      };
      started.push(worker);
      return worker;
    };

    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    // The upstream stage's topic, as its own workers would create it.
    await buffer.admin.ensureTopic({ name: ids.numbers, partitions: PARTITIONS });
    const producer = await buffer.producer({ clientId: `scale-out-test-${run}` });
    let produced = 0;
    const produce = async (count: number): Promise<void> => {
      const messages = [];
      for (let i = 0; i < count; i++) {
        const n = ++produced;
        messages.push({
          key: `k${n}`,
          value: new TextEncoder().encode(JSON.stringify(n)),
          timestamp: Date.now(),
        });
      }
      await producer.send(ids.numbers, messages);
    };
    const killed = new Set<Worker>();
    const allInSink = async (): Promise<void> => {
      await waitFor(
        () => {
          for (const w of started) {
            if (
              !w.process.running &&
              w.process.events.at(-1)?.event !== 'stopped' &&
              !killed.has(w)
            ) {
              throw new Error(`worker ${w.name} died:\n${w.process.tail()}`);
            }
          }
          return new Set(sinkValues()).size === produced;
        },
        { timeoutMs: 45_000, description: `all ${produced} records in the sink` },
      );
    };

    try {
      const [w1, w2, w3] = [start('w1'), start('w2'), start('w3')];
      await waitFor(() => spread([w1, w2, w3], 2), {
        timeoutMs: 60_000,
        description: '2 partitions per worker',
      });
      await produce(3_000);
      await allInSink();

      // SIGKILL w3 with records in flight: its partitions go to w1 and w2 once its session expires.
      await produce(3_000);
      w3.process.kill('SIGKILL');
      killed.add(w3);
      await w3.process.exited;
      await waitFor(() => spread([w1, w2], 3), {
        timeoutMs: 60_000,
        description: 'w1 and w2 to take over all 6 partitions',
      });
      await produce(3_000);
      await allInSink();

      // w3 comes back (a new process, same instance name): the group spreads 2 each again.
      const w3again = start('w3');
      await waitFor(() => spread([w1, w2, w3again], 2), {
        timeoutMs: 60_000,
        description: '2 partitions per worker again',
      });
      await produce(3_000);
      await allInSink();

      const values = sinkValues();
      const expected = Array.from({ length: produced }, (_, i) => i + 1);
      expect([...new Set(values)].sort((a, b) => a - b)).toEqual(expected);
      // Every live worker processed something after the final rebalance.
      for (const w of [w1, w2, w3again]) expect(latestAssignment(w)).toHaveLength(2);
      await Promise.all([w1, w2, w3again].map((w) => w.process.stop()));
      for (const w of [w1, w2, w3again])
        expect(w.process.events.at(-1)).toEqual({ event: 'stopped', status: 'stopped' });
    } finally {
      await producer.close();
      await buffer.close();
    }
  }, 180_000);
});
