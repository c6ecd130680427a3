// kafkajs arms a negative timer when nothing is pending; Node 24 warns about it once per
// process. A child process (its own warnings) sends and reads a record through the buffer
// against the real broker: no TimeoutNegativeWarning, and the record arrives.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS;
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const child = `
import { kafkaBuffer } from '@codefeedr/plugin-kafka';
const topic = 'cftest-negative-timer-' + process.pid;
const buffer = await kafkaBuffer.create({ brokers: process.env.BROKERS.split(','), logLevel: 'nothing' });
await buffer.admin.ensureTopic({ name: topic, partitions: 1 });
const producer = await buffer.producer({ clientId: topic });
await producer.send(topic, [{ key: 'k', value: new TextEncoder().encode('v'), timestamp: Date.now() }]);
await producer.close();
const consumer = await buffer.consumer({ topics: [topic], group: topic, start: 'earliest' });
let got = [];
for (let i = 0; i < 50 && got.length === 0; i++) got = await consumer.poll(10, 500);
await consumer.close();
await buffer.admin.deleteTopic(topic);
await buffer.close();
console.log(JSON.stringify(got.map((m) => new TextDecoder().decode(m.value))));
`;

describe('kafkajs request queue timer', () => {
  it('a process that produces and consumes prints no TimeoutNegativeWarning', async () => {
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>(
      (resolve, reject) =>
        execFile(
          process.execPath,
          ['--input-type=module', '-e', child],
          {
            cwd: join(import.meta.dirname, '..'),
            env: { ...process.env, BROKERS: brokers, NODE_OPTIONS: '' },
            timeout: 60_000,
          },
          (error, stdout, stderr) =>
            error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve({ stdout, stderr }),
        ),
    );
    expect(JSON.parse(stdout.trim())).toEqual(['v']);
    expect(stderr).not.toMatch(/TimeoutNegativeWarning/);
  });
});
