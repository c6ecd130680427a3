// Scale-out: three worker processes of one stage (`pipeline.run({ mode: 'worker', stage })`)
// share a 6-partition Kafka topic through their consumer group. One is SIGKILLed and its
// partitions move to the other two; it starts again and they rebalance back. Every record
// reaches the sink at least once. Workers report their assignments as JSON lines. The first
// case runs on each of the buffer's clients (kafkajs, @platformatic/kafka).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKafkaBuffer, KafkaBuffer, kafkaBufferConfigSchema } from '@codefeedr/plugin-kafka';
import kafkajs from 'kafkajs';
import { waitFor, WorkerProcess } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
const cliBin = join(import.meta.dirname, '..', 'packages', 'cli', 'src', 'bin.ts');
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
const kafka = await kafkaBuffer.create({ brokers: s.brokers, client: s.client ?? 'kafkajs', sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, logLevel: 'nothing' });
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

function sinkValues(folder = dir): number[] {
  const values: number[] = [];
  if (!existsSync(folder)) return values;
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.ndjson'))) {
    for (const line of readFileSync(join(folder, file), 'utf8').split('\n')) {
      if (line.trim() !== '') values.push(JSON.parse(line) as number);
    }
  }
  return values;
}

const started: Worker[] = [];
/** Topics the tests made (theirs and the runtime's dead-letter topics): deleted at the end. */
const topics: string[] = [];
afterAll(async () => {
  await Promise.all(started.map((w) => w.process.stop(5_000)));
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
  for (const topic of topics) await buffer.admin.deleteTopic(topic).catch(() => undefined);
  await buffer.close();
});

// The two cases share nothing (own topics, groups, folders) and mostly wait: run side by side.
describe.concurrent('scale-out through Kafka consumer groups', () => {
  // On each of the buffer's clients (its `client` key).
  it.each(['kafkajs', 'platformatic'] as const)(
    'spreads 6 partitions over 3 workers, moves a killed worker’s partitions to the others and back, losing nothing (%s)',
    async (client) => {
      const folder = join(dir, client);
      mkdirSync(folder, { recursive: true });
      const script = join(folder, 'worker.ts');
      writeFileSync(script, workerSource);
      const ids = {
        pipeline: `scale-${client}-${run}`,
        numbers: `numbers-${client}-${run}`,
        work: `work-${client}-${run}`,
      };
      const mine: Worker[] = [];
      const start = (name: string): Worker => {
        const settings = {
          ...ids,
          brokers,
          client,
          instance: name,
          sinkPath: join(folder, `sink-${name}-${mine.length}.ndjson`),
        };
        const worker = {
          name,
          process: new WorkerProcess({
            script,
            env: { ...process.env, SCALE_OUT_WORKER: JSON.stringify(settings) },
          }),
        };
        started.push(worker);
        mine.push(worker);
        return worker;
      };

      const buffer = createKafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, client, logLevel: 'nothing' }),
      );
      // The upstream stage's topic, as its own workers would create it.
      topics.push(ids.numbers, `${ids.work}.dlq`);
      await buffer.admin.ensureTopic({ name: ids.numbers, partitions: PARTITIONS });
      const producer = await buffer.producer({ clientId: `scale-out-test-${client}-${run}` });
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
            for (const w of mine) {
              if (
                !w.process.running &&
                w.process.events.at(-1)?.event !== 'stopped' &&
                !killed.has(w)
              ) {
                throw new Error(`worker ${w.name} died:\n${w.process.tail()}`);
              }
            }
            return new Set(sinkValues(folder)).size === produced;
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

        const values = sinkValues(folder);
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
    },
    180_000,
  );
  it('does the same with `codefeedr run <pipeline> --stage <id>` workers (assignments read from the group)', async () => {
    const folder = join(dir, 'cli');
    mkdirSync(folder, { recursive: true });
    const ids = { numbers: `cli-numbers-${run}`, work: `cli-work-${run}` };
    const pipelineFile = join(folder, 'pipeline.yaml');
    writeFileSync(
      pipelineFile,
      [
        `name: scale-cli-${run}`,
        'buffer:',
        "  use: '@codefeedr/plugin-kafka:kafka'",
        `  with: { brokers: ${JSON.stringify(brokers)}, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, logLevel: nothing }`,
        'stages:',
        `  - { id: ${ids.numbers}, use: sequence, with: { from: 1, to: 1 } }`,
        `  - { id: ${ids.work}, use: ndjson-file, from: ${ids.numbers}, with: { path: unused.ndjson } }`,
        '',
      ].join('\n'),
    );
    const workers: WorkerProcess[] = [];
    const startCli = (name: string): WorkerProcess => {
      const sink = join(folder, `sink-${name}-${workers.length}.ndjson`);
      const worker = new WorkerProcess({
        script: cliBin,
        args: [
          'run',
          pipelineFile,
          '--stage',
          ids.work,
          '--set',
          `${ids.work}.path=${sink}`,
          '--no-progress',
        ],
        cwd: join(import.meta.dirname, '..'),
      });
      workers.push(worker);
      started.push({ name, process: worker });
      return worker;
    };

    const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    /** Partitions per live member of the stage's group, as the group coordinator reports them. */
    const groupSpread = async (members: number): Promise<boolean> => {
      const [group] = (await admin.describeGroups([ids.work])).groups;
      if (group?.state !== 'Stable' || group.members.length !== members) return false;
      const owned = group.members.map(
        (m) =>
          kafkajs.AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[
            ids.numbers
          ] ?? [],
      );
      const all = owned.flat();
      return (
        owned.every((p) => p.length === PARTITIONS / members) &&
        new Set(all).size === PARTITIONS &&
        all.length === PARTITIONS
      );
    };
    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    topics.push(ids.numbers, `${ids.work}.dlq`);
    await buffer.admin.ensureTopic({ name: ids.numbers, partitions: PARTITIONS });
    const producer = await buffer.producer({ clientId: `scale-out-cli-${run}` });
    let produced = 0;
    const produce = async (count: number): Promise<void> => {
      const messages = Array.from({ length: count }, () => {
        const n = ++produced;
        return {
          key: `k${n}`,
          value: new TextEncoder().encode(JSON.stringify(n)),
          timestamp: Date.now(),
        };
      });
      await producer.send(ids.numbers, messages);
    };
    const allInSink = () =>
      waitFor(() => new Set(sinkValues(folder)).size === produced, {
        timeoutMs: 45_000,
        description: `all ${produced} records in the CLI workers' sinks`,
      });
    try {
      const [c1, , c3] = [startCli('c1'), startCli('c2'), startCli('c3')];
      await waitFor(() => groupSpread(3), {
        timeoutMs: 60_000,
        description: '3 CLI workers with 2 partitions each',
      });
      await produce(2_000);
      await allInSink();
      c3!.kill('SIGKILL');
      await c3!.exited;
      await produce(2_000);
      await waitFor(() => groupSpread(2), {
        timeoutMs: 60_000,
        description: '2 CLI workers with 3 partitions each',
      });
      await allInSink();
      startCli('c3');
      await waitFor(() => groupSpread(3), {
        timeoutMs: 60_000,
        description: 'the restarted CLI worker back in the group',
      });
      await produce(2_000);
      await allInSink();
      expect([...new Set(sinkValues(folder))].sort((a, b) => a - b)).toEqual(
        Array.from({ length: produced }, (_, i) => i + 1),
      );
      expect(c1.running).toBe(true);
      await Promise.all(workers.map((w) => w.stop()));
      // SIGTERM stops a CLI worker gracefully: it prints its summary and exits 0.
      for (const w of workers.filter((w) => w !== c3)) expect((await w.exited).code).toBe(0);
    } finally {
      await producer.close();
      await buffer.close();
      await admin.disconnect();
    }
  }, 180_000);
});
