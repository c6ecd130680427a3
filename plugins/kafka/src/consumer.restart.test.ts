// kafkajs restarts a consumer that crashed on a retriable error; until the new one has joined it
// has no group, and pause, resume and seek throw "Consumer group was not initialized". The
// buffer consumer pauses and resumes for backpressure from poll(), so that error reached the
// stage and killed the worker (seen under load in the scale-out test). A stand-in kafkajs
// consumer here, since a real one cannot be made to crash on cue.
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaBufferConsumer } from './consumer.js';

class RestartingConsumer {
  restarting = false;
  readonly paused = new Set<string>();
  readonly handlers = new Map<string, (event: { payload: any }) => void>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  readonly events = {
    GROUP_JOIN: 'join',
    REBALANCING: 'rebalancing',
    REQUEST: 'request',
    CRASH: 'crash',
  };
  on(event: string, handler: (event: { payload: unknown }) => void) {
    this.handlers.set(event, handler);
  }
  async connect() {}
  async subscribe() {}
  async run(options: { eachBatch: (payload: EachBatchPayload) => Promise<void> }) {
    this.eachBatch = options.eachBatch;
    this.join();
  }
  join() {
    this.handlers.get('join')!({ payload: { memberAssignment: { t: [0] } } });
  }
  private guard() {
    if (this.restarting)
      throw Object.assign(
        new Error('Consumer group was not initialized, consumer#run must be called first'),
        { name: 'KafkaJSNonRetriableError', retriable: false },
      );
  }
  pause(topics: { topic: string; partitions?: number[] }[]) {
    this.guard();
    for (const t of topics) for (const p of t.partitions ?? []) this.paused.add(`${t.topic}/${p}`);
  }
  resume(topics: { topic: string; partitions?: number[] }[]) {
    this.guard();
    for (const t of topics)
      for (const p of t.partitions ?? []) this.paused.delete(`${t.topic}/${p}`);
  }
  seek() {
    this.guard();
  }
  async fetch(from: number, count: number) {
    await this.eachBatch!({
      batch: {
        topic: 't',
        partition: 0,
        highWatermark: String(from + count),
        messages: Array.from({ length: count }, (_, i) => ({
          offset: String(from + i),
          key: null,
          value: Buffer.from(String(from + i)),
          timestamp: '0',
          headers: {},
        })),
      },
      isStale: () => false,
    } as unknown as EachBatchPayload);
  }
}

describe('KafkaBufferConsumer while kafkajs restarts its consumer', () => {
  it('a backpressure resume (or a rewind) during the restart is dropped, not thrown: the rejoin resumes fetching', async () => {
    const fake = new RestartingConsumer();
    const kafka = { consumer: () => fake as unknown as Consumer } as unknown as Kafka;
    const consumer = new KafkaBufferConsumer(
      kafka,
      () => Promise.reject(new Error('no admin here')),
      { group: 'g', topics: ['t'], maxBufferedRecords: 10 },
      {
        sessionTimeoutMs: 6_000,
        heartbeatIntervalMs: 500,
        rebalanceTimeoutMs: 60_000,
        maxWaitTimeMs: 100,
        maxBytesPerPartition: 1_048_576,
        maxBufferedRecords: 10,
        maxBufferedBytes: 1_048_576,
        readUncommitted: false,
        joinTimeoutMs: 1_000,
      },
    );
    await consumer.open();
    await fake.fetch(0, 12); // over the bound: fetching pauses
    expect(fake.paused.has('t/0')).toBe(true);
    fake.restarting = true; // kafkajs crashed the consumer and is starting a new one
    fake.handlers.get('crash')!({
      payload: { restart: true, error: new Error('broker went away') },
    });
    const polled = await consumer.poll(12, 0); // drains the queue: resume would throw
    expect(polled.map((m) => m.offset)).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    await consumer.rewind!(); // mid-restart only the queue goes
    // The new kafkajs consumer joins unpaused (as kafkajs's does), and fetching goes on.
    fake.restarting = false;
    fake.paused.clear();
    fake.join();
    await fake.fetch(12, 3);
    expect((await consumer.poll(10, 0)).map((m) => m.offset)).toEqual(['12', '13', '14']);
    expect(consumer.assignment()).toEqual([{ topic: 't', partition: 0 }]);
  });
});
