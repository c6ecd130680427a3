// Why the buffer on @platformatic/kafka has no transactions (PLATFORMATIC_CAPABILITIES): its
// read_committed consumer keeps one aborted range per producer id in a fetch, so when one
// producer aborted twice, the first aborted transaction's records are delivered. A kafkajs
// transactional producer writes the same partition both consumers read. When this test
// fails because nothing aborted arrives on @platformatic/kafka either, the client has been
// fixed: give the buffer on it transactions again (the README says how).
import { randomBytes } from 'node:crypto';
import type { ConsumedMessage } from '@codefeedr/core';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafkaBuffer, kafkaBufferConfigSchema, kafkaCapabilitiesOf } from './index.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = randomBytes(4).toString('hex');
const topic = `cftest-read-committed-${run}`;
const kafka = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING });

afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

/** Everything a new group of the buffer on `client` reads from the topic, in order. */
async function readAll(client: 'kafkajs' | 'platformatic', count: number): Promise<string[]> {
  const buffer = createKafkaBuffer(
    kafkaBufferConfigSchema.parse({ brokers, client, logLevel: 'nothing' }),
  );
  const consumer = await buffer.consumer({
    group: `${topic}-${client}`,
    topics: [topic],
    start: 'earliest',
  });
  const got: ConsumedMessage[] = [];
  const deadline = Date.now() + 20_000;
  try {
    while (got.length < count && Date.now() < deadline)
      got.push(...(await consumer.poll(100, 200)));
    // Whatever else would arrive, read until the topic stays quiet.
    for (let quiet = 0; quiet < 3;) {
      const more = await consumer.poll(100, 200);
      got.push(...more);
      quiet = more.length === 0 ? quiet + 1 : 0;
    }
  } finally {
    await consumer.close();
    await buffer.close();
  }
  return got.map((m) => Buffer.from(m.value).toString());
}

describe('read_committed on the two clients of the Kafka buffer', () => {
  it('kafkajs hides both aborted transactions of one producer; @platformatic/kafka 2.12.1 lets the first through', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({
      transactionalId: `${topic}-writer`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const outcomes = ['commit', 'abort', 'commit', 'abort', 'commit'] as const;
    for (const [i, outcome] of outcomes.entries()) {
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ value: `${outcome}-${i}` }] });
      await (outcome === 'commit' ? transaction.commit() : transaction.abort());
    }
    await producer.disconnect();
    const committed = ['commit-0', 'commit-2', 'commit-4'];

    expect(await readAll('kafkajs', committed.length)).toEqual(committed);
    const onPlatformatic = await readAll('platformatic', committed.length);
    expect(onPlatformatic.filter((v) => v.startsWith('commit'))).toEqual(committed);
    expect(onPlatformatic.filter((v) => v.startsWith('abort'))).toEqual(['abort-1']);
    expect(kafkaCapabilitiesOf('platformatic').transactions).toBe(false);
  }, 60_000);
});
