// A stage worker crash under exactly-once: a transform stage (`guarantee: 'exactly-once'`)
// runs as a worker process on the Kafka buffer and is SIGKILLed mid-stream, twice, then
// restarted under the same instance name. Its transactional producer (transactional id from
// pipeline, stage and instance) fences the dead one, whose open transaction is aborted; a
// read_committed reader of the stage's output topic sees every record exactly once.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsumedMessage } from '@codefeedr/core';
import { KafkaBuffer, kafkaBufferConfigSchema } from '@codefeedr/plugin-kafka';
import { waitFor, WorkerProcess } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
const dir = join(import.meta.dirname, '..', '.tmp', `kafka-faults-worker-${run}`);
const workers: WorkerProcess[] = [];
/** Topics the test made (and the runtime's dead-letter topic): deleted at the end. */
const topics: string[] = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(5_000)));
  rmSync(dir, { recursive: true, force: true });
  const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
  for (const topic of topics) await buffer.admin.deleteTopic(topic).catch(() => undefined);
  await buffer.close();
});

const workerSource = `
import { PipelineBuilder, defineTransform, printerOutput, sequenceInput, SequenceNumber, silentLogger, z } from '@codefeedr/core';
import { kafkaBuffer } from '@codefeedr/plugin-kafka';

const s = JSON.parse(process.env.FAULTS_WORKER);
const double = defineTransform({
  name: 'double', description: 'n -> 2n', configSchema: z.object({}),
  inputTypes: [SequenceNumber], outputType: SequenceNumber,
  transform: ([numbers]) => numbers.map((n) => 2 * n),
});
const pipeline = new PipelineBuilder(s.pipeline)
  .append(sequenceInput.create(s.numbers, { from: 1, to: 1 }))
  .append(double.create(s.double, {}))
  .append(printerOutput.create(s.print, {}))
  .setBuffer(kafkaBuffer, { brokers: s.brokers, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, logLevel: 'nothing' })
  .setStageOptions(s.numbers, { partitions: 3 })
  .setStageOptions(s.double, { partitions: 3, guarantee: 'exactly-once', batchSize: 100 })
  .build();
process.stdout.write(JSON.stringify({ event: 'starting' }) + '\\n');
const summary = await pipeline.run({ mode: 'worker', stage: s.double, instance: 'w0', handleSignals: true, logger: silentLogger });
process.stdout.write(JSON.stringify({ event: 'stopped', status: summary.status }) + '\\n');
process.exit(0);
`;

describe('exactly-once stage worker on the Kafka buffer', () => {
  it('delivers every record exactly once although the worker is SIGKILLed mid-stream twice', async () => {
    mkdirSync(dir, { recursive: true });
    const script = join(dir, 'worker.ts');
    writeFileSync(script, workerSource);
    const ids = {
      pipeline: `eo-${run}`,
      numbers: `eo-numbers-${run}`,
      double: `eo-double-${run}`,
      print: `eo-print-${run}`,
    };
    const start = (): WorkerProcess => {
      const worker = new WorkerProcess({
        script,
        env: { ...process.env, FAULTS_WORKER: JSON.stringify({ ...ids, brokers }) },
      });
      workers.push(worker);
      return worker;
    };

    const buffer = new KafkaBuffer(kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }));
    topics.push(ids.numbers, ids.double, `${ids.double}.dlq`);
    await buffer.admin.ensureTopic({ name: ids.numbers, partitions: 3 });
    await buffer.admin.ensureTopic({ name: ids.double, partitions: 3 });
    const producer = await buffer.producer({ clientId: `eo-test-${run}` });
    const reader = await buffer.consumer({
      group: `eo-reader-${run}`,
      topics: [ids.double],
      start: 'earliest',
    });
    const received: number[] = [];
    const read = async (): Promise<void> => {
      const batch: ConsumedMessage[] = await reader.poll(1_000, 100);
      for (const m of batch) received.push(JSON.parse(new TextDecoder().decode(m.value)) as number);
    };
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
    try {
      for (let kill = 0; kill < 2; kill++) {
        const worker = start();
        await worker.waitForEvent((e) => e.event === 'starting', 30_000, 'the worker to start');
        await produce(2_000);
        // Kill while the worker is relaying this chunk: once some of it is visible, plus a random moment.
        const before = received.length;
        await waitFor(
          async () => {
            await read();
            if (!worker.running) throw new Error(`worker died:\n${worker.tail()}`);
            return received.length > before;
          },
          { timeoutMs: 60_000, intervalMs: 0, description: 'output from the worker' },
        );
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 40)));
        worker.kill('SIGKILL');
        expect((await worker.exited).signal).toBe('SIGKILL');
      }
      const last = start();
      await produce(2_000);
      await waitFor(
        async () => {
          await read();
          if (!last.running) throw new Error(`worker died:\n${last.tail()}`);
          return new Set(received).size === produced;
        },
        {
          timeoutMs: 90_000,
          intervalMs: 0,
          description: `all ${produced} records doubled at the output`,
        },
      );
      await last.stop();
      expect(last.events.at(-1)).toEqual({ event: 'stopped', status: 'stopped' });
      // Anything still in flight would show now: read until the topic stays quiet.
      for (let empty = 0; empty < 2;) {
        const size = received.length;
        await read();
        empty = received.length === size ? empty + 1 : 0;
      }
      const expected = Array.from({ length: produced }, (_, i) => 2 * (i + 1));
      expect(received.length).toBe(produced);
      expect([...received].sort((a, b) => a - b)).toEqual(expected);
    } finally {
      await reader.close();
      await producer.close();
      await buffer.close();
    }
  }, 180_000);
});
