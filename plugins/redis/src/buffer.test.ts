import {
  murmur2Partition,
  type BufferConsumer,
  type ConsumedMessage,
} from '@codefeedr/core/buffer';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBuffer, redisBuffer, type RedisBufferOptions } from './buffer.js';
import { MALFORMED_ENTRY_HEADER } from './consumer.js';
import { RedisUnavailableError } from './errors.js';
import { deleteByPrefix, rawRedis, redisUrl, uniquePrefix, waitFor } from './redis-test-support.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const prefix = uniquePrefix('buffer');
let raw: Redis;
const opened: RedisBuffer[] = [];

async function openBuffer(options: RedisBufferOptions = {}): Promise<RedisBuffer> {
  const buffer = await RedisBuffer.connect({
    url: redisUrl(),
    prefix,
    heartbeatMs: 50,
    leaseMs: 600,
    claimIntervalMs: 50,
    ...options,
  });
  opened.push(buffer);
  return buffer;
}

function message(key: string | undefined, n: number) {
  return {
    key,
    value: encoder.encode(JSON.stringify({ key, n })),
    timestamp: 1_700_000_000_000 + n,
  };
}

/** Polls until `count` messages arrived (or fails at the deadline). */
async function pollUntil(
  consumer: BufferConsumer,
  count: number,
  timeoutMs = 10_000,
): Promise<ConsumedMessage[]> {
  const received: ConsumedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count) {
    if (Date.now() > deadline)
      throw new Error(
        `Timed out after ${timeoutMs} ms with ${received.length} of ${count} messages`,
      );
    received.push(...(await consumer.poll(500, 100)));
  }
  return received;
}

beforeAll(() => {
  raw = rawRedis();
});

afterAll(async () => {
  await Promise.allSettled(opened.map((buffer) => buffer.close()));
  await deleteByPrefix(raw, prefix);
  raw.disconnect();
});

describe('RedisBuffer admin', () => {
  it('ensures, grows, describes and deletes topics', async () => {
    const buffer = await openBuffer();
    expect(await buffer.admin.describeTopic('admin-t')).toBeUndefined();
    await buffer.admin.ensureTopic({ name: 'admin-t', partitions: 2 });
    expect(await buffer.admin.describeTopic('admin-t')).toEqual({ name: 'admin-t', partitions: 2 });
    await buffer.admin.ensureTopic({ name: 'admin-t', partitions: 1 }); // never shrinks
    expect(await buffer.admin.describeTopic('admin-t')).toEqual({ name: 'admin-t', partitions: 2 });
    await buffer.admin.ensureTopic({ name: 'admin-t', partitions: 3 });
    expect(await buffer.admin.describeTopic('admin-t')).toEqual({ name: 'admin-t', partitions: 3 });

    const producer = await buffer.producer({ clientId: 'admin' });
    await producer.send('admin-t', [message('a', 1), message('b', 2), message('c', 3)]);
    await buffer.admin.deleteTopic('admin-t');
    expect(await buffer.admin.describeTopic('admin-t')).toBeUndefined();
    const streams = await raw.keys(`${prefix}:admin-t:*`);
    expect(streams).toEqual([]);
  });

  it('rejects topic names and specs it cannot represent, with codes', async () => {
    const buffer = await openBuffer();
    await expect(
      buffer.admin.ensureTopic({ name: '@topics', partitions: 1 }),
    ).rejects.toMatchObject({
      code: 'TOPIC_INVALID',
    });
    await expect(buffer.admin.ensureTopic({ name: 'ok', partitions: 0 })).rejects.toMatchObject({
      code: 'TOPIC_INVALID',
    });
    await expect(buffer.producer({ clientId: 'tx', transactional: true })).rejects.toMatchObject({
      code: 'TRANSACTIONS_UNSUPPORTED',
    });
    const strict = await openBuffer({ autoCreateTopics: false });
    const producer = await strict.producer({ clientId: 'strict' });
    await expect(producer.send('missing-topic', [message('a', 1)])).rejects.toMatchObject({
      code: 'TOPIC_NOT_FOUND',
    });
  });

  it('is a buffer component that validates its whole config up front', async () => {
    expect(redisBuffer.kind).toBe('buffer');
    expect(redisBuffer.capabilities).toEqual({ transactions: false, replay: true });
    const error = (await Promise.resolve()
      .then(() =>
        redisBuffer.create({ url: redisUrl(), heartbeatMs: 5_000, leaseMs: 1_000, maxLen: 0 }),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as (Error & { code: string; problems: string[] }) | undefined;
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.problems.some((p) => p.startsWith('maxLen'))).toBe(true);
    expect(error?.problems.some((p) => p.startsWith('heartbeatMs'))).toBe(true); // every problem at once
    const buffer = await redisBuffer.create({ url: redisUrl(), prefix });
    opened.push(buffer as RedisBuffer);
    expect(buffer.kind).toBe('redis');
  });

  it('fails with a clear error naming host:port but not the password when Redis is unreachable', async () => {
    const error = await RedisBuffer.connect({ url: 'redis://user:s3cret-pass@127.0.0.1:1' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as RedisUnavailableError).code).toBe('REDIS_UNAVAILABLE');
    expect((error as Error).message).toContain('127.0.0.1:1');
    expect((error as Error).message).not.toContain('s3cret-pass');
  });
});

describe('RedisBuffer producer and consumer', () => {
  it('partitions by key as Kafka does and keeps per-key order', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'order', partitions: 4 });
    const producer = await buffer.producer({ clientId: 'order' });
    const keys = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
    const sent = Array.from({ length: 600 }, (_, n) => message(keys[n % keys.length], n));
    for (let i = 0; i < sent.length; i += 100) await producer.send('order', sent.slice(i, i + 100));

    const consumer = await buffer.consumer({ group: 'order-g', topics: ['order'] });
    expect(consumer.assignment()).toHaveLength(4);
    const received = await pollUntil(consumer, sent.length);
    expect(received).toHaveLength(sent.length);
    for (const m of received) {
      expect(m.partition).toBe(murmur2Partition(m.key!, 4));
      expect(m.topic).toBe('order');
    }
    // Independently of core's function: Kafka's UtilsTest has murmur2("foobar") = -790332482,
    // and (-790332482 & 0x7fffffff) % 4 = 2.
    await producer.send('order', [message('foobar', 9_999)]);
    const [foobar] = await pollUntil(consumer, 1);
    expect(foobar!.partition).toBe(2);
    for (const key of keys) {
      const ns = received
        .filter((m) => m.key === key)
        .map((m) => JSON.parse(decoder.decode(m.value)).n as number);
      expect(ns).toEqual(
        sent.filter((m) => m.key === key).map((m) => JSON.parse(decoder.decode(m.value)).n),
      );
    }
    const first = received.find((m) => m.key === 'alpha')!;
    expect(first.timestamp).toBe(sent[0]!.timestamp);
    await consumer.close();
  });

  it('honours an explicit partition and rejects one the topic does not have', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'explicit', partitions: 3 });
    const producer = await buffer.producer({ clientId: 'explicit' });
    await producer.send(
      'explicit',
      [0, 1, 2].map((partition) => ({ ...message('same-key', partition), partition })),
    );
    for (const p of [0, 1, 2]) expect(await raw.xlen(`${prefix}:explicit:${p}`)).toBe(1);
    await expect(
      producer.send('explicit', [{ ...message('k', 9), partition: 3 }]),
    ).rejects.toMatchObject({
      code: 'UNKNOWN_PARTITION',
    });
  });

  it('keeps order within one send larger than a script call, and reports entries Redis rejects', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'big', partitions: 1 });
    const producer = await buffer.producer({ clientId: 'big' });
    await producer.send(
      'big',
      Array.from({ length: 2_500 }, (_, n) => message('one-key', n)),
    );
    const entries = await raw.xrange(`${prefix}:big:0`, '-', '+');
    expect(entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('v') + 1]!).n)).toEqual(
      Array.from({ length: 2_500 }, (_, n) => n),
    );

    await buffer.admin.ensureTopic({ name: 'wrongtype', partitions: 1 });
    await raw.set(`${prefix}:wrongtype:0`, 'not a stream');
    const error = await producer.send('wrongtype', [message('a', 1), message('b', 2)]).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(error?.code).toBe('REDIS_SEND_FAILED');
    expect(error?.message).toContain('2 of 2');
  });

  it('acknowledges only up to the committed position', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'acks', partitions: 1 });
    const producer = await buffer.producer({ clientId: 'acks' });
    await producer.send(
      'acks',
      Array.from({ length: 10 }, (_, n) => message(undefined, n)),
    );
    const consumer = await buffer.consumer({ group: 'acks-g', topics: ['acks'] });
    const first = await pollUntil(consumer, 4);
    const batch = first.slice(0, 4);
    const stream = `${prefix}:acks:0`;
    expect((await raw.xpending(stream, 'acks-g'))[0]).toBe(first.length);
    // Commit a position just after the 4th entry: exactly those four are acknowledged.
    const [ms, seq] = batch[3]!.offset.split('-').map(Number);
    await consumer.commit([{ topic: 'acks', partition: 0, offset: `${ms}-${seq! + 1}` }]);
    expect((await raw.xpending(stream, 'acks-g'))[0]).toBe(first.length - 4);
    await pollUntil(consumer, 10 - first.length);
    await consumer.commit();
    expect((await raw.xpending(stream, 'acks-g'))[0]).toBe(0);
    expect(consumer.positions()).toHaveLength(1);
    expect(await raw.xinfo('CONSUMERS', stream, 'acks-g')).toHaveLength(1);
    await consumer.close();
    // It held nothing, so it left the group's consumer list.
    expect(await raw.xinfo('CONSUMERS', stream, 'acks-g')).toHaveLength(0);
  });

  it('never returns more than maxRecords, across many partitions', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'bounded', partitions: 8 });
    const producer = await buffer.producer({ clientId: 'bounded' });
    await producer.send(
      'bounded',
      Array.from({ length: 200 }, (_, n) => message(`k${n}`, n)),
    );
    const consumer = await buffer.consumer({ group: 'bounded-g', topics: ['bounded'] });
    const seen = new Set<string>();
    const deadline = Date.now() + 10_000;
    while (seen.size < 200 && Date.now() < deadline) {
      const batch = await consumer.poll(5, 100);
      expect(batch.length).toBeLessThanOrEqual(5);
      for (const m of batch) seen.add(`${m.partition}/${m.offset}`);
    }
    expect(seen.size).toBe(200);
    await consumer.close();
  });

  it('trims each partition stream to about maxLen, keeping the newest entries', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'trim', partitions: 1, config: { maxLen: '100' } });
    const producer = await buffer.producer({ clientId: 'trim' });
    for (let i = 0; i < 5_000; i += 500)
      await producer.send(
        'trim',
        Array.from({ length: 500 }, (_, n) => message(undefined, i + n)),
      );
    const length = await raw.xlen(`${prefix}:trim:0`);
    // `~` trims whole macro nodes (100 entries by default), so a little more than maxLen remains.
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(400);
    const [newest] = (await raw.xrevrange(`${prefix}:trim:0`, '+', '-', 'COUNT', 1)) as [
      string,
      string[],
    ][];
    const fields = newest![1];
    expect(JSON.parse(fields![fields!.indexOf('v') + 1]!).n).toBe(4_999);
  });

  it('delivers an entry it did not write, marked malformed, instead of failing', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'foreign', partitions: 1 });
    await raw.xadd(`${prefix}:foreign:0`, '*', 'payload', 'hello');
    const consumer = await buffer.consumer({ group: 'foreign-g', topics: ['foreign'] });
    const [received] = await pollUntil(consumer, 1);
    expect(received!.headers?.[MALFORMED_ENTRY_HEADER]).toBeDefined();
    expect(JSON.parse(decoder.decode(received!.value))).toEqual({ payload: 'hello' });
    expect(received!.timestamp).toBe(Number(received!.offset.split('-')[0]));
    await consumer.close();
  });

  it('reports the lag of its partitions: entries not yet delivered to the group', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'lag', partitions: 2 });
    const producer = await buffer.producer({ clientId: 'lag' });
    await producer.send(
      'lag',
      Array.from({ length: 30 }, (_, n) => message(`k${n}`, n)),
    );
    const consumer = (await buffer.consumer({
      group: 'lag-g',
      topics: ['lag'],
    })) as BufferConsumer & {
      lag(): number | undefined;
    };
    await waitFor('lag 30', () => consumer.lag() === 30);
    await pollUntil(consumer, 30);
    await waitFor('lag 0', () => consumer.lag() === 0);
    await consumer.close();
  });

  it('returns promptly when a poll is aborted and loses nothing read meanwhile', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'abort', partitions: 1 });
    const consumer = await buffer.consumer({ group: 'abort-g', topics: ['abort'] });
    const controller = new AbortController();
    const started = Date.now();
    const polling = consumer.poll(100, 30_000, controller.signal);
    setTimeout(() => controller.abort(), 100);
    expect(await polling).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
    const producer = await buffer.producer({ clientId: 'abort' });
    await producer.send('abort', [message('x', 1), message('x', 2)]);
    const received = await pollUntil(consumer, 2);
    expect(received.map((m) => JSON.parse(decoder.decode(m.value)).n)).toEqual([1, 2]);
    await consumer.close();
  });
});

describe('RedisBuffer start positions', () => {
  async function sendNumbered(
    buffer: RedisBuffer,
    topic: string,
    from: number,
    count: number,
    timestamp?: number,
  ) {
    const producer = await buffer.producer({ clientId: topic });
    await producer.send(
      topic,
      Array.from({ length: count }, (_, n) => ({
        ...message(undefined, from + n),
        timestamp: timestamp ?? Date.now(),
      })),
    );
  }
  const numbers = (messages: ConsumedMessage[]) =>
    messages.map((m) => JSON.parse(decoder.decode(m.value)).n as number);

  it('earliest reads everything, latest only what comes after joining', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'starts', partitions: 1 });
    await sendNumbered(buffer, 'starts', 0, 5);
    const earliest = await buffer.consumer({
      group: 'g-earliest',
      topics: ['starts'],
      start: 'earliest',
    });
    const latest = await buffer.consumer({
      group: 'g-latest',
      topics: ['starts'],
      start: 'latest',
    });
    await sendNumbered(buffer, 'starts', 5, 3);
    expect(numbers(await pollUntil(earliest, 8))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(numbers(await pollUntil(latest, 3))).toEqual([5, 6, 7]);
    expect(await latest.poll(10, 50)).toEqual([]);
    await earliest.close();
    await latest.close();
  });

  it('a timestamp start begins at the first record whose event time reaches it, as Kafka does', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'ts-start', partitions: 1 });
    const base = Date.now();
    const producer = await buffer.producer({ clientId: 'ts' });
    // 450 records with event times a minute before `base` (more than one 200-entry scan step), then 50 from `base` on.
    await producer.send(
      'ts-start',
      Array.from({ length: 500 }, (_, n) => ({
        ...message(undefined, n),
        timestamp: n < 450 ? base - 60_000 + n : base + n,
      })),
    );
    const consumer = await buffer.consumer({
      group: 'g-ts',
      topics: ['ts-start'],
      start: { timestamp: base },
    });
    const received = await pollUntil(consumer, 50);
    expect(numbers(received)).toEqual(Array.from({ length: 50 }, (_, i) => 450 + i));
    expect(await consumer.poll(10, 50)).toEqual([]);

    // A timestamp past every record: nothing now, and what arrives later is delivered.
    const future = await buffer.consumer({
      group: 'g-ts-future',
      topics: ['ts-start'],
      start: { timestamp: base + 10_000 },
    });
    expect(await future.poll(10, 100)).toEqual([]);
    await producer.send('ts-start', [{ ...message(undefined, 1_000), timestamp: base + 20_000 }]);
    expect(numbers(await pollUntil(future, 1))).toEqual([1_000]);
    await consumer.close();
    await future.close();
  });

  it('committed resumes after the last commit of the group, whatever start says', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'resume', partitions: 2 });
    await sendNumbered(buffer, 'resume', 0, 20);
    const first = await buffer.consumer({
      group: 'g-resume',
      topics: ['resume'],
      start: 'committed',
    });
    const got = await pollUntil(first, 20);
    await first.commit();
    await first.close();
    await sendNumbered(buffer, 'resume', 20, 4);
    const second = await buffer.consumer({
      group: 'g-resume',
      topics: ['resume'],
      start: 'earliest',
    });
    const rest = await pollUntil(second, 4);
    expect(numbers(rest).sort((a, b) => a - b)).toEqual([20, 21, 22, 23]);
    expect(got).toHaveLength(20);
    await second.close();
  });
});

describe('RedisBuffer consumer groups', () => {
  const assigned = (consumer: BufferConsumer) =>
    consumer
      .assignment()
      .map((tp) => tp.partition)
      .sort((a, b) => a - b);

  it('spreads partitions over the group and rebalances when a consumer joins and leaves', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'spread', partitions: 4 });
    const changes: number[][] = [];
    const a = await buffer.consumer({
      group: 'spread-g',
      topics: ['spread'],
      onAssignmentChange: (tps) => changes.push(tps.map((tp) => tp.partition)),
    });
    expect(assigned(a)).toEqual([0, 1, 2, 3]);
    const other = await openBuffer();
    const b = await other.consumer({ group: 'spread-g', topics: ['spread'] });
    await waitFor('a to give up half its partitions', () => assigned(a).length === 2, 15_000);
    await waitFor('b to hold the other half', () => assigned(b).length === 2, 15_000);
    expect([...assigned(a), ...assigned(b)].sort()).toEqual([0, 1, 2, 3]);

    // Both read: every record is delivered to exactly one of them.
    const producer = await buffer.producer({ clientId: 'spread' });
    await producer.send(
      'spread',
      Array.from({ length: 80 }, (_, n) => message(`key-${n}`, n)),
    );
    const fromA: ConsumedMessage[] = [];
    const fromB: ConsumedMessage[] = [];
    await waitFor('all 80 records', async () => {
      fromA.push(...(await a.poll(100, 50)));
      fromB.push(...(await b.poll(100, 50)));
      return fromA.length + fromB.length >= 80;
    });
    expect(fromA.length + fromB.length).toBe(80);
    expect(fromA.length).toBeGreaterThan(0);
    expect(fromB.length).toBeGreaterThan(0);
    for (const m of fromA) expect(assigned(a)).toContain(m.partition);
    for (const m of fromB) expect(assigned(b)).toContain(m.partition);
    await a.commit();
    await b.commit();

    await b.close();
    await waitFor('a to take every partition back', () => assigned(a).length === 4, 15_000);
    expect(changes.at(-1)?.sort()).toEqual([0, 1, 2, 3]);
    expect(changes.some((c) => c.length === 2)).toBe(true);
    await a.close();
  });

  it('takes over the partitions of a consumer whose lease expired and reclaims its pending entries', async () => {
    const buffer = await openBuffer({ claimMinIdleMs: 200 });
    await buffer.admin.ensureTopic({ name: 'reclaim', partitions: 2 });
    const producer = await buffer.producer({ clientId: 'reclaim' });
    const sent = Array.from({ length: 40 }, (_, n) => message(`key-${n}`, n));
    await producer.send('reclaim', sent);

    // A worker that read everything and died before committing: its entries sit in the group's
    // pending list and its lease (on the Redis clock) runs out shortly.
    const dead = 'dead-worker';
    for (const p of [0, 1]) {
      await raw.xgroup('CREATE', `${prefix}:reclaim:${p}`, 'reclaim-g', '0', 'MKSTREAM');
      await raw.xreadgroup(
        'GROUP',
        'reclaim-g',
        dead,
        'COUNT',
        1000,
        'STREAMS',
        `${prefix}:reclaim:${p}`,
        '>',
      );
    }
    const [seconds, micros] = await raw.time();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    await raw.zadd(`${prefix}:@group:reclaim-g:reclaim`, redisNow + 1_500, dead);

    const history: number[] = [];
    const survivor = await buffer.consumer({
      group: 'reclaim-g',
      topics: ['reclaim'],
      onAssignmentChange: (tps) => history.push(tps.length),
    });
    await waitFor(
      'the survivor to own both partitions',
      () => assigned(survivor).length === 2,
      10_000,
    );
    // While the dead worker's lease lasted, the survivor owned only its half.
    expect(history[0]).toBe(1);
    const received = await pollUntil(survivor, 40);
    expect(
      received.map((m) => JSON.parse(decoder.decode(m.value)).n).sort((x, y) => x - y),
    ).toEqual(sent.map((_, n) => n));
    await survivor.commit();
    // The dead worker, now holding nothing, is pruned from the group at the next claim pass.
    await waitFor('the dead consumer to be pruned', async () => {
      const consumers = (await raw.xinfo(
        'CONSUMERS',
        `${prefix}:reclaim:0`,
        'reclaim-g',
      )) as unknown[][];
      await survivor.poll(1, 10);
      return consumers.every((c) => c[1] !== dead);
    });
    for (const p of [0, 1])
      expect((await raw.xpending(`${prefix}:reclaim:${p}`, 'reclaim-g'))[0]).toBe(0);
    await survivor.close();
  });

  it('stops claiming its partitions when its lease may have run out (a stalled event loop)', async () => {
    const buffer = await openBuffer();
    await buffer.admin.ensureTopic({ name: 'stall', partitions: 2 });
    const consumer = await buffer.consumer({ group: 'stall-g', topics: ['stall'] });
    expect(assigned(consumer)).toEqual([0, 1]);
    // Block this process longer than the lease (600 ms): no heartbeat can run meanwhile.
    const until = Date.now() + 700;
    while (Date.now() < until) {
      /* stalled */
    }
    expect(assigned(consumer)).toEqual([]); // checked before any timer could renew the lease
    expect(await consumer.poll(10, 0)).toEqual([]);
    await waitFor('the lease to be renewed', () => assigned(consumer).length === 2);
    await consumer.close();
  });

  it('re-reads its own pending entries at once when restarted under the same name', async () => {
    const buffer = await openBuffer({ consumerName: 'stable-worker', claimMinIdleMs: 60_000 });
    await buffer.admin.ensureTopic({ name: 'own-pending', partitions: 1 });
    const producer = await buffer.producer({ clientId: 'own' });
    await producer.send(
      'own-pending',
      Array.from({ length: 5 }, (_, n) => message('k', n)),
    );
    const first = await buffer.consumer({ group: 'own-g', topics: ['own-pending'] });
    expect(await pollUntil(first, 5)).toHaveLength(5);
    // Dies without commit or close (a crash): only its lease key is left to expire.
    await raw.del(`${prefix}:@group:own-g:own-pending`);
    const restartedBuffer = await openBuffer({
      consumerName: 'stable-worker',
      claimMinIdleMs: 60_000,
    });
    const restarted = await restartedBuffer.consumer({ group: 'own-g', topics: ['own-pending'] });
    const again = await pollUntil(restarted, 5, 10_000);
    expect(again.map((m) => JSON.parse(decoder.decode(m.value)).n)).toEqual([0, 1, 2, 3, 4]);
    await restarted.commit();
    expect((await raw.xpending(`${prefix}:own-pending:0`, 'own-g'))[0]).toBe(0);
    await restarted.close();
    await first.close();
  });
});
