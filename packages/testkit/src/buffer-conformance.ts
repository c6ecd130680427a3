import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type {
  Buffer,
  BufferCapabilities,
  BufferConsumer,
  ConsumedMessage,
  JsonValue,
  TopicPartition,
} from '@codefeedr/core';
import {
  decodeDeadLetter,
  defineOutput,
  defineTransform,
  PipelineBuilder,
  SequenceNumber,
  sequenceInput,
  silentLogger,
  z,
} from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { decodeTestRecord, sendInBatches, testRecords } from './test-records.js';
import { waitFor } from './wait-for.js';
import { testkitWorkerDir, WorkerProcess } from './worker-process.js';

/** How a separate Node process builds the same buffer (for the SIGKILL crash tests). */
export interface BufferWorkerSpec {
  /**
   * Module to import in the child: a file URL or path (TypeScript sources work, see
   * README), or a package name such as `@acme/codefeedr-plugin-nats`.
   */
  module: string | URL;
  /** The export to use: a BufferComponent (its `create(config)` is called) or a function `(config) => Buffer`. */
  export: string;
  /** JSON config handed to `create`/the function. */
  config?: JsonValue;
}

export interface BufferConformanceOptions {
  /** Shown in the test names, and part of every topic and group name the suite creates. */
  name: string;
  /** A fresh buffer; called once per test, closed by the suite at the end of the test. */
  create: () => Buffer | Promise<Buffer>;
  /** What the plugin declares. The buffer must report the same; `transactions` adds the exactly-once cases. */
  capabilities: BufferCapabilities;
  /**
   * How a child process builds the buffer. Required for buffers whose data lives outside
   * the process (Kafka, Redis): it adds the SIGKILL crash tests. In-process buffers (memory)
   * cannot survive their process and leave it out.
   */
  worker?: BufferWorkerSpec;
  /** Records per test (default 2000). */
  records?: number;
  /** Partitions of the topics the suite creates (default 4; the rebalance test uses 6). */
  partitions?: number;
  /** Longest wait for a consumer group to settle after a member joins or leaves (default 45 s). */
  rebalanceTimeoutMs?: number;
  /** SIGKILLs per crash test (default 3). */
  kills?: number;
  /** Per-test timeout for the slow cases (rebalance, crash), default 120 s. */
  slowTestTimeoutMs?: number;
}

interface Settings extends Required<Omit<BufferConformanceOptions, 'worker'>> {
  worker: BufferWorkerSpec | undefined;
}

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
const tpKey = (tp: TopicPartition): string => `${tp.topic}#${tp.partition}`;

/**
 * Registers vitest `describe`/`it` blocks proving a Buffer implementation keeps the
 * contract: per-key order, no loss across consumer restarts, rebalancing 2 → 3 → 1
 * consumers with one owner per partition, replay from a timestamp, exactly-once with
 * transactions, and at-least-once (or exactly-once) when a worker process is SIGKILLed.
 * Every test runs against the real server the buffer talks to.
 */
export function bufferConformanceSuite(options: BufferConformanceOptions): void {
  const s: Settings = {
    records: 2_000,
    partitions: 4,
    rebalanceTimeoutMs: 45_000,
    kills: 3,
    slowTestTimeoutMs: 120_000,
    ...options,
    worker: options.worker,
  };
  const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  let counter = 0;
  const unique = (what: string): string => `cf-${slug(s.name)}-${what}-${run}-${counter++}`;

  /** Topics a test created, deleted when it ends so repeated runs do not pile them up. */
  const createdTopics = new WeakMap<Buffer, Set<string>>();
  const track = (buffer: Buffer, ...topics: string[]): void => {
    for (const topic of topics) createdTopics.get(buffer)?.add(topic);
  };

  async function withBuffer<T>(body: (buffer: Buffer) => Promise<T>): Promise<T> {
    const buffer = await s.create();
    createdTopics.set(buffer, new Set());
    try {
      return await body(buffer);
    } finally {
      for (const topic of createdTopics.get(buffer) ?? []) {
        await buffer.admin.deleteTopic(topic).catch(() => undefined);
      }
      await buffer.close();
    }
  }

  async function topicWith(
    buffer: Buffer,
    what: string,
    partitions = s.partitions,
  ): Promise<string> {
    const topic = unique(what);
    track(buffer, topic);
    await buffer.admin.ensureTopic({ name: topic, partitions });
    return topic;
  }

  describe(`${s.name} buffer conformance`, () => {
    it('reports the capabilities it declares', async () => {
      await withBuffer(async (buffer) => {
        expect(typeof buffer.kind).toBe('string');
        expect(buffer.kind.length).toBeGreaterThan(0);
        expect({ ...buffer.capabilities }).toEqual({ ...s.capabilities });
      });
    });

    it('creates topics idempotently, describes and deletes them', async () => {
      await withBuffer(async (buffer) => {
        const topic = unique('admin');
        expect(await buffer.admin.describeTopic(topic)).toBeUndefined();
        await buffer.admin.ensureTopic({ name: topic, partitions: s.partitions });
        await buffer.admin.ensureTopic({ name: topic, partitions: s.partitions });
        expect(await buffer.admin.describeTopic(topic)).toEqual({
          name: topic,
          partitions: s.partitions,
        });
        await buffer.admin.deleteTopic(topic);
        await waitFor(async () => (await buffer.admin.describeTopic(topic)) === undefined, {
          timeoutMs: 15_000,
          description: `topic ${topic} to disappear after deleteTopic`,
        });
      });
    });

    it('keeps per-key order and sends every key to one partition', async () => {
      await withBuffer(async (buffer) => {
        const topic = await topicWith(buffer, 'order');
        const sent = testRecords(s.records, { keys: 16 });
        const producer = await buffer.producer({ clientId: unique('producer') });
        await sendInBatches(producer, topic, sent, 137);
        await producer.close();

        const consumer = await buffer.consumer({ group: unique('group'), topics: [topic] });
        const received = await drain(consumer, s.records, 30_000);
        await consumer.close();

        expect(received.length).toBe(s.records);
        const seqsByKey = new Map<string, number[]>();
        const partitionsByKey = new Map<string, Set<number>>();
        for (const message of received) {
          const value = decodeTestRecord(message.value);
          expect(message.key).toBe(value.key);
          expect(message.headers?.['test-id']).toBe(value.id);
          expect(message.topic).toBe(topic);
          seqsByKey.set(value.key, [...(seqsByKey.get(value.key) ?? []), value.seq]);
          partitionsByKey.set(
            value.key,
            (partitionsByKey.get(value.key) ?? new Set()).add(message.partition),
          );
        }
        const expectedPerKey = new Map<string, number>();
        for (const message of sent)
          expectedPerKey.set(message.key!, (expectedPerKey.get(message.key!) ?? 0) + 1);
        for (const [key, count] of expectedPerKey) {
          expect(seqsByKey.get(key), `sequence of ${key}`).toEqual(
            Array.from({ length: count }, (_, i) => i),
          );
          expect(partitionsByKey.get(key)?.size, `partitions used by ${key}`).toBe(1);
        }
        // 16 keys over several partitions: the partitioner spreads them.
        expect(new Set(received.map((m) => m.partition)).size).toBeGreaterThan(1);
      });
    });

    it('honours an explicit partition over the key', async () => {
      await withBuffer(async (buffer) => {
        const topic = await topicWith(buffer, 'explicit');
        const producer = await buffer.producer({ clientId: unique('producer') });
        // One key, every partition: the explicit partition must win over key hashing.
        const messages = Array.from({ length: s.partitions }, (_, partition) => ({
          key: 'same-key',
          value: new TextEncoder().encode(String(partition)),
          timestamp: Date.now(),
          partition,
        }));
        await producer.send(topic, messages);
        await producer.close();
        const consumer = await buffer.consumer({ group: unique('group'), topics: [topic] });
        const received = await drain(consumer, s.partitions, 30_000);
        await consumer.close();
        expect(
          received.map((m) => [m.partition, new TextDecoder().decode(m.value)]).sort(),
        ).toEqual(messages.map((m) => [m.partition, String(m.partition)]).sort());
      });
    });

    it('resumes from committed positions after a consumer restarts, losing nothing', async () => {
      await withBuffer(async (buffer) => {
        const topic = await topicWith(buffer, 'restart');
        const sent = testRecords(s.records);
        const producer = await buffer.producer({ clientId: unique('producer') });
        await sendInBatches(producer, topic, sent);
        await producer.close();
        const group = unique('group');

        const first = await buffer.consumer({ group, topics: [topic] });
        const committed = await drain(first, Math.floor(s.records / 3), 30_000);
        await first.commit();
        // Read on without committing: these must come again after the restart.
        const uncommitted = await drain(first, 1, 10_000, 50);
        expect(uncommitted.length).toBeGreaterThan(0);
        await first.close();

        const second = await buffer.consumer({ group, topics: [topic] });
        const committedIds = new Set(committed.map((m) => decodeTestRecord(m.value).id));
        const rest = await drainIds(second, s.records - committedIds.size, 30_000);
        await second.close();

        const restIds = rest.map((m) => decodeTestRecord(m.value).id);
        expect(
          restIds.filter((id) => committedIds.has(id)),
          'committed records delivered again',
        ).toEqual([]);
        for (const message of uncommitted)
          expect(restIds).toContain(decodeTestRecord(message.value).id);
        expect(new Set([...committedIds, ...restIds]).size).toBe(s.records);
      });
    });

    it(
      'rebalances as consumers join and leave (2 → 3 → 1): one owner per partition, nothing lost',
      async () => {
        await withBuffer(async (buffer) => {
          const partitions = 6;
          const topic = await topicWith(buffer, 'rebalance', partitions);
          const group = unique('group');
          const all = Array.from({ length: partitions }, (_, partition) =>
            tpKey({ topic, partition }),
          );
          const producer = await buffer.producer({ clientId: unique('producer') });
          const third = Math.floor(s.records / 3);
          const batches = [
            testRecords(third, { prefix: 'a' }),
            testRecords(third, { prefix: 'b' }),
            testRecords(s.records - 2 * third, { prefix: 'c' }),
          ];
          const seen = new Set<string>();
          const overlaps: string[] = [];
          const members: GroupMember[] = [];
          const monitor = setInterval(() => {
            const owners = new Map<string, number>();
            for (const member of members.filter((m) => m.active)) {
              for (const tp of member.consumer.assignment()) {
                const key = tpKey(tp);
                if (owners.has(key))
                  overlaps.push(`${key} owned by members ${owners.get(key)} and ${member.index}`);
                owners.set(key, member.index);
              }
            }
          }, 10);
          const join = async (): Promise<GroupMember> => {
            const member = new GroupMember(
              members.length,
              await buffer.consumer({ group, topics: [topic] }),
              seen,
            );
            members.push(member);
            return member;
          };
          const settled =
            (expected: GroupMember[]): (() => boolean) =>
            () => {
              const owned = expected.map((m) => m.consumer.assignment().map(tpKey));
              const flat = owned.flat();
              return (
                owned.every((list) => list.length > 0) &&
                flat.length === partitions &&
                new Set(flat).size === partitions &&
                all.every((key) => flat.includes(key))
              );
            };
          try {
            const [c1, c2] = [await join(), await join()];
            await waitFor(settled([c1, c2]), {
              timeoutMs: s.rebalanceTimeoutMs,
              description: '2 consumers to share 6 partitions',
            });
            await sendInBatches(producer, topic, batches[0]!);

            const c3 = await join();
            await waitFor(settled([c1, c2, c3]), {
              timeoutMs: s.rebalanceTimeoutMs,
              description: '3 consumers to share 6 partitions',
            });
            expect(c3.consumer.assignment().length).toBeGreaterThan(0);
            await sendInBatches(producer, topic, batches[1]!);

            await c2.leave();
            await c3.leave();
            await waitFor(settled([c1]), {
              timeoutMs: s.rebalanceTimeoutMs,
              description: 'the last consumer to own all 6 partitions',
            });
            await sendInBatches(producer, topic, batches[2]!);

            await waitFor(() => seen.size === s.records, {
              timeoutMs: s.rebalanceTimeoutMs,
              description: `all ${s.records} records to be consumed`,
            });
            const errors = members.flatMap((m) => m.errors);
            expect(errors).toEqual([]);
            expect(overlaps).toEqual([]);
            const missing = batches.flat().filter((m) => !seen.has(decodeTestRecord(m.value).id));
            expect(missing.length).toBe(0);
          } finally {
            clearInterval(monitor);
            await Promise.allSettled(members.map((m) => m.leave()));
            await producer.close();
          }
        });
      },
      s.slowTestTimeoutMs,
    );

    it(
      'through the core runtime, sends an undecodable record to the dead-letter topic and processes the rest',
      async () => {
        await withBuffer(async (buffer) => {
          const numbers = unique('numbers');
          const doubled = unique('double');
          track(buffer, numbers, doubled, `${numbers}.dlq`, `${doubled}.dlq`);
          const collect = unique('collect');
          track(buffer, `${collect}.dlq`);
          const count = Math.min(s.records, 1_000);
          const poison = Uint8Array.from([0xff, 0xfe, 0x00, 0x7b]); // not JSON in any encoding
          // The poison record sits in the input stage's topic before the pipeline starts.
          await buffer.admin.ensureTopic({ name: numbers, partitions: s.partitions });
          const producer = await buffer.producer({ clientId: unique('producer') });
          await producer.send(numbers, [{ key: 'poison', value: poison, timestamp: Date.now() }]);
          await producer.close();

          const collected: number[] = [];
          const double = defineTransform({
            name: 'double',
            description: 'x → 2x',
            configSchema: z.object({}),
            inputTypes: [SequenceNumber] as const,
            outputType: SequenceNumber,
            transform: ([input]) => input.map((n) => n * 2),
          });
          const sink = defineOutput({
            name: 'collect',
            description: 'keeps values in memory',
            configSchema: z.object({}),
            inputTypes: [SequenceNumber] as const,
            createSink: () => ({
              write: (batch) => void batch.forEach((r) => collected.push(r.value)),
              flush: async () => undefined,
              close: async () => undefined,
            }),
          });
          const pipeline = new PipelineBuilder(unique('dlq-pipeline'))
            .append(sequenceInput.create(numbers, { from: 1, to: count }))
            .append(double.create(doubled, {}))
            .append(sink.create(collect, {}))
            .setBuffer(buffer)
            .setStageOptions(numbers, { partitions: s.partitions })
            .setStageOptions(doubled, { partitions: s.partitions })
            .build();
          const summary = await pipeline.run({
            mode: 'local',
            logger: silentLogger,
            checkpointIntervalMs: 200,
          });
          expect(summary.status).toBe('finished');

          const expected = Array.from({ length: count }, (_, i) => 2 * (i + 1));
          expect(new Set(collected)).toEqual(new Set(expected));
          const reader = await buffer.consumer({
            group: unique('reader'),
            topics: [`${doubled}.dlq`],
            start: 'earliest',
          });
          const letters = await drain(reader, 1, 30_000);
          letters.push(...(await reader.poll(100, 500)));
          await reader.close();
          expect(letters.length).toBe(1);
          const letter = decodeDeadLetter(letters[0]!.value);
          expect(letter.stageId).toBe(doubled);
          expect(letter.error.code).toBe('DECODE_FAILED');
          expect(letter.original).toEqual({
            encoding: 'base64',
            data: Buffer.from(poison).toString('base64'),
          });
          expect(letter.origin?.topic).toBe(numbers);
        });
      },
      s.slowTestTimeoutMs,
    );

    if (s.capabilities.replay) {
      it('starts a new group at the earliest record, the latest, or a timestamp', async () => {
        await withBuffer(async (buffer) => {
          const topic = await topicWith(buffer, 'replay');
          const half = Math.floor(s.records / 2);
          const boundary = Date.now();
          const older = testRecords(half, {
            prefix: 'old',
            timestamp: (i) => boundary - 60_000 + i,
          });
          const newer = testRecords(half, { prefix: 'new', timestamp: (i) => boundary + i });
          const producer = await buffer.producer({ clientId: unique('producer') });
          await sendInBatches(producer, topic, [...older, ...newer]);

          const fromTimestamp = await buffer.consumer({
            group: unique('group'),
            topics: [topic],
            start: { timestamp: boundary },
          });
          const fromTimestampIds = (await drain(fromTimestamp, half, 30_000)).map(
            (m) => decodeTestRecord(m.value).id,
          );
          const earliest = await buffer.consumer({
            group: unique('group'),
            topics: [topic],
            start: 'earliest',
          });
          const earliestCount = (await drain(earliest, 2 * half, 30_000)).length;
          const latest = await buffer.consumer({
            group: unique('group'),
            topics: [topic],
            start: 'latest',
          });
          // Only records sent after the latest-consumer joined may reach it.
          const later = testRecords(50, { prefix: 'later' });
          await sendInBatches(producer, topic, later);
          const latestIds = (await drain(latest, later.length, 30_000)).map(
            (m) => decodeTestRecord(m.value).id,
          );
          await Promise.all([
            fromTimestamp.close(),
            earliest.close(),
            latest.close(),
            producer.close(),
          ]);

          expect(new Set(fromTimestampIds)).toEqual(
            new Set(newer.map((m) => decodeTestRecord(m.value).id)),
          );
          expect(earliestCount).toBe(2 * half);
          expect(new Set(latestIds)).toEqual(
            new Set(later.map((m) => decodeTestRecord(m.value).id)),
          );
        });
      });
    }

    if (s.capabilities.transactions) {
      it(
        'with transactions, aborted output stays invisible and every record arrives exactly once',
        async () => {
          await withBuffer(async (buffer) => {
            const input = await topicWith(buffer, 'tx-in');
            const output = await topicWith(buffer, 'tx-out');
            const group = unique('group');
            const clientId = unique('relay');
            const sent = testRecords(s.records);
            const producer = await buffer.producer({ clientId: unique('producer') });
            await sendInBatches(producer, input, sent);
            await producer.close();

            // First life: one committed batch, one aborted batch, then a crash with a transaction open.
            let consumer = await buffer.consumer({ group, topics: [input] });
            let relay = await buffer.producer({ clientId, transactional: true });
            await relayOnce(consumer, relay, output, group, 'commit');
            await relayOnce(consumer, relay, output, group, 'abort');
            await relayOnce(consumer, relay, output, group, 'leave-open');
            await consumer.close();
            await relay.close();

            // Second life, same transactional identity: relay everything that was not committed.
            consumer = await buffer.consumer({ group, topics: [input] });
            relay = await buffer.producer({ clientId, transactional: true });
            const reader = await buffer.consumer({
              group: unique('reader'),
              topics: [output],
              start: 'earliest',
            });
            const received: ConsumedMessage[] = [];
            await waitFor(
              async () => {
                await relayOnce(consumer, relay, output, group, 'commit');
                received.push(...(await reader.poll(1_000, 50)));
                return (
                  new Set(received.map((m) => decodeTestRecord(m.value).id)).size === s.records
                );
              },
              { timeoutMs: 60_000, intervalMs: 0, description: 'every record to be relayed' },
            );
            received.push(...(await drainUntilIdle(reader)));
            await Promise.all([consumer.close(), relay.close(), reader.close()]);

            expectExactlyOnce(
              received.map((m) => decodeTestRecord(m.value).id),
              sent,
            );
          });
        },
        s.slowTestTimeoutMs,
      );
    }

    const worker = s.worker;
    if (worker !== undefined) {
      const crashTest = (mode: 'at-least-once' | 'exactly-once') => async () => {
        await withBuffer(async (buffer) => {
          const input = await topicWith(buffer, `${mode}-in`);
          const output = await topicWith(buffer, `${mode}-out`);
          const sent = testRecords(s.records);
          const producer = await buffer.producer({ clientId: unique('producer') });
          await sendInBatches(producer, input, sent);
          await producer.close();
          const relaySettings = {
            module: worker.module instanceof URL ? worker.module.href : worker.module,
            export: worker.export,
            config: worker.config ?? null,
            inputTopic: input,
            outputTopic: output,
            group: unique('group'),
            clientId: unique('relay'),
            mode,
            batchSize: 40,
            pauseMs: 5,
          };
          const start = (): WorkerProcess =>
            new WorkerProcess({
              script: join(testkitWorkerDir(), 'relay-worker.mjs'),
              env: { ...process.env, CODEFEEDR_TESTKIT_RELAY: JSON.stringify(relaySettings) },
            });

          const reader = await buffer.consumer({
            group: unique('reader'),
            topics: [output],
            start: 'earliest',
          });
          const received: ConsumedMessage[] = [];
          const ids = new Set<string>();
          const take = (batch: readonly ConsumedMessage[]): void => {
            for (const m of batch) {
              received.push(m);
              ids.add(decodeTestRecord(m.value).id);
            }
          };
          let current: WorkerProcess | undefined;
          try {
            for (let kill = 0; kill < s.kills; kill++) {
              current = start();
              // Kill somewhere in the middle of the stream: after a random amount of progress
              // plus a random few milliseconds, so the kill lands between poll, send and commit.
              const threshold = 20 + Math.floor(Math.random() * 200);
              await current.waitForEvent(
                (e) => e.event === 'progress' && Number(e.relayed) >= threshold,
                60_000,
                `progress ≥ ${threshold}`,
              );
              await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 25)));
              current.kill('SIGKILL');
              const exit = await current.exited;
              expect(exit.signal).toBe('SIGKILL');
              take(await reader.poll(5_000, 0));
            }
            current = start();
            const last = current;
            await waitFor(
              async () => {
                take(await reader.poll(1_000, 100));
                if (!last.running) throw new Error(`relay worker died:\n${last.tail()}`);
                return ids.size === s.records;
              },
              {
                timeoutMs: s.slowTestTimeoutMs,
                intervalMs: 0,
                description: `all ${s.records} records at the output`,
              },
            );
            await current.stop();
            take(await drainUntilIdle(reader));
          } finally {
            current?.kill('SIGKILL');
            await reader.close();
          }
          const receivedIds = received.map((m) => decodeTestRecord(m.value).id);
          if (mode === 'exactly-once') expectExactlyOnce(receivedIds, sent);
          else
            expect(new Set(receivedIds)).toEqual(
              new Set(sent.map((m) => decodeTestRecord(m.value).id)),
            );
        });
      };

      // The two crash tests mostly wait (for sessions to expire, workers to start): run them side by side.
      it.concurrent(
        `delivers at least once when the worker process is SIGKILLed ${s.kills} times mid-stream`,
        crashTest('at-least-once'),
        s.slowTestTimeoutMs,
      );
      if (s.capabilities.transactions) {
        it.concurrent(
          `delivers exactly once with transactions when the worker process is SIGKILLed ${s.kills} times`,
          crashTest('exactly-once'),
          s.slowTestTimeoutMs,
        );
      }
    }
  });
}

/** A consumer in a group polling and committing in the background, as a stage worker does. */
class GroupMember {
  active = true;
  readonly errors: string[] = [];
  private readonly loop: Promise<void>;

  constructor(
    readonly index: number,
    readonly consumer: BufferConsumer,
    seen: Set<string>,
  ) {
    this.loop = (async () => {
      while (this.active) {
        try {
          const batch = await consumer.poll(100, 50);
          for (const m of batch) seen.add(decodeTestRecord(m.value).id);
          if (batch.length > 0) await consumer.commit();
        } catch (error) {
          this.errors.push(`member ${index}: ${String((error as Error).message ?? error)}`);
        }
      }
    })();
  }

  async leave(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    await this.loop;
    await this.consumer.close();
  }
}

async function relayOnce(
  consumer: BufferConsumer,
  relay: Awaited<ReturnType<Buffer['producer']>>,
  output: string,
  group: string,
  outcome: 'commit' | 'abort' | 'leave-open',
): Promise<void> {
  const batch = await consumer.poll(97, 1_000);
  if (batch.length === 0) return;
  const transaction = await relay.beginTransaction!();
  await transaction.send(
    output,
    batch.map((m) => ({ key: m.key, value: m.value, timestamp: m.timestamp, headers: m.headers })),
  );
  await transaction.sendOffsets(group, consumer.positions());
  if (outcome === 'commit') await transaction.commit();
  else if (outcome === 'abort') await transaction.abort();
}

/** Polls until `count` messages arrived or the deadline passed; returns what arrived. */
async function drain(
  consumer: BufferConsumer,
  count: number,
  timeoutMs: number,
  maxRecords = 500,
): Promise<ConsumedMessage[]> {
  const out: ConsumedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    out.push(...(await consumer.poll(Math.min(maxRecords, count - out.length), 200)));
  }
  return out;
}

/** Polls until `count` distinct test-record ids arrived or the deadline passed. */
async function drainIds(
  consumer: BufferConsumer,
  count: number,
  timeoutMs: number,
): Promise<ConsumedMessage[]> {
  const out: ConsumedMessage[] = [];
  const ids = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  while (ids.size < count && Date.now() < deadline) {
    for (const m of await consumer.poll(500, 200)) {
      out.push(m);
      ids.add(decodeTestRecord(m.value).id);
    }
  }
  return out;
}

/** Everything still readable: polls until two polls in a row (1 s each) come back empty. */
async function drainUntilIdle(consumer: BufferConsumer): Promise<ConsumedMessage[]> {
  const out: ConsumedMessage[] = [];
  for (let empty = 0; empty < 2;) {
    const batch = await consumer.poll(1_000, 1_000);
    if (batch.length === 0) empty++;
    else {
      empty = 0;
      out.push(...batch);
    }
  }
  return out;
}

function expectExactlyOnce(
  receivedIds: readonly string[],
  sent: ReturnType<typeof testRecords>,
): void {
  const counts = new Map<string, number>();
  for (const id of receivedIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id}×${n}`);
  expect(duplicates, 'records delivered more than once').toEqual([]);
  expect(receivedIds.length).toBe(sent.length);
  expect(new Set(receivedIds)).toEqual(new Set(sent.map((m) => decodeTestRecord(m.value).id)));
}
