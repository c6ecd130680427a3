import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeyManager, keyIdFor, redisKeyManager } from './key-manager.js';
import { deleteByPrefix, rawRedis, redisUrl, uniquePrefix, waitFor } from './redis-test-support.js';

const prefix = uniquePrefix('keys');
let raw: Redis;
const opened: RedisKeyManager[] = [];

async function openManager(): Promise<RedisKeyManager> {
  const manager = await RedisKeyManager.connect({ url: redisUrl(), prefix });
  opened.push(manager);
  return manager;
}

beforeAll(() => {
  raw = rawRedis();
});

afterAll(async () => {
  await Promise.allSettled(opened.map((manager) => manager.close()));
  await deleteByPrefix(raw, prefix);
  raw.disconnect();
});

describe('RedisKeyManager', () => {
  it('charges the key it returns and returns undefined once no key has enough calls', async () => {
    const manager = await openManager();
    await manager.setKey('charge', { key: 'token-a', limit: 5, intervalMs: 3_600_000 });
    const first = await manager.acquire('charge', 2);
    expect(first).toMatchObject({ key: 'token-a', id: keyIdFor('token-a'), remainingCalls: 3 });
    expect((await manager.acquire('charge', 3))?.remainingCalls).toBe(0);
    expect(await manager.acquire('charge', 1)).toBeUndefined();
    expect(await manager.acquire('no-such-target')).toBeUndefined();
    const [info] = await manager.listKeys('charge');
    expect(info).toMatchObject({ limit: 5, remainingCalls: 0 });
  });

  it('picks the key that refreshes soonest, then the one with the fewest calls left', async () => {
    const manager = await openManager();
    // Registered in this order, each one refreshes a little later than the one before.
    await manager.setKey('fit', { id: 'late-big', key: 'k1', limit: 100, intervalMs: 3_600_000 });
    await manager.setKey('fit', { id: 'late-small', key: 'k2', limit: 10, intervalMs: 3_600_000 });
    await manager.setKey('fit', { id: 'soon', key: 'k3', limit: 3, intervalMs: 1_800_000 });
    const keys = await manager.listKeys('fit');
    const byRefresh = [...keys].sort(
      (a, b) => a.refreshAt - b.refreshAt || a.remainingCalls - b.remainingCalls,
    );
    expect(byRefresh[0]!.id).toBe('soon');

    expect((await manager.acquire('fit', 2))?.id).toBe('soon');
    // 'soon' has 1 call left: a request for 2 goes to the next best fit in refresh order.
    const expectedNext = byRefresh.filter((k) => k.id !== 'soon')[0]!.id;
    expect((await manager.acquire('fit', 2))?.id).toBe(expectedNext);
    expect((await manager.acquire('fit', 1))?.id).toBe('soon');
    expect((await manager.acquire('fit', 50))?.id).toBe('late-big');
    expect(await manager.acquire('fit', 101)).toBeUndefined();
  });

  it('breaks ties on equal refresh time by fewest remaining calls', async () => {
    const manager = await openManager();
    await manager.setKey('tie', { id: 'a', key: 'ka', limit: 10, intervalMs: 3_600_000 });
    await manager.setKey('tie', { id: 'b', key: 'kb', limit: 10, intervalMs: 3_600_000 });
    // Give both the same window so only the remaining calls tell them apart.
    const stored = await raw.hgetall(`${prefix}:tie`);
    const a = JSON.parse(stored.a!);
    const b = JSON.parse(stored.b!);
    b.refreshAt = a.refreshAt;
    b.remaining = 4;
    await raw.hset(`${prefix}:tie`, 'b', JSON.stringify(b));
    expect((await manager.acquire('tie', 3))?.id).toBe('b');
    expect((await manager.acquire('tie', 3))?.id).toBe('a'); // b has 1 left now
  });

  it('refreshes a key to its limit when its interval has passed', async () => {
    const manager = await openManager();
    await manager.setKey('refresh', { key: 'short-lived', limit: 2, intervalMs: 300 });
    const [before] = await manager.listKeys('refresh');
    expect((await manager.acquire('refresh', 2))?.remainingCalls).toBe(0);
    const refreshed = await waitFor(
      'the key to refresh',
      () => manager.acquire('refresh', 1),
      5_000,
    );
    expect(refreshed.remainingCalls).toBe(1);
    expect(Date.now()).toBeGreaterThanOrEqual(before!.refreshAt - 50); // not before its window ended (clock skew margin)
    expect((refreshed.refreshAt - before!.refreshAt) % 300).toBe(0); // windows stay aligned
  });

  it('keeps remaining calls when a key is registered again, capped at a new lower limit', async () => {
    const manager = await openManager();
    await manager.setKey('again', { key: 'tok', limit: 10, intervalMs: 3_600_000 });
    await manager.acquire('again', 4);
    await manager.setKey('again', { key: 'tok', limit: 10, intervalMs: 3_600_000 });
    expect((await manager.listKeys('again'))[0]!.remainingCalls).toBe(6);
    await manager.setKey('again', { key: 'tok', limit: 3, intervalMs: 3_600_000 });
    expect((await manager.listKeys('again'))[0]!.remainingCalls).toBe(3);
    expect(await manager.removeKey('again', keyIdFor('tok'))).toBe(true);
    expect(await manager.acquire('again')).toBeUndefined();
  });

  it('never spends more calls than the limits allow under many concurrent acquirers', async () => {
    const limits = [37, 50, 13];
    const workers = await Promise.all([openManager(), openManager(), openManager(), openManager()]);
    for (const [i, limit] of limits.entries())
      await workers[0]!.setKey('race', {
        id: `key-${i}`,
        key: `secret-${i}`,
        limit,
        intervalMs: 3_600_000,
      });
    const attempts = workers.flatMap((worker, w) =>
      Array.from({ length: 60 }, (_, n) => worker.acquire('race', 1 + ((n + w) % 3))),
    );
    const results = await Promise.all(attempts);
    const spent = new Map<string, number>();
    const requested = workers.flatMap((_, w) =>
      Array.from({ length: 60 }, (_, n) => 1 + ((n + w) % 3)),
    );
    results.forEach((result, i) => {
      if (result) spent.set(result.id, (spent.get(result.id) ?? 0) + requested[i]!);
    });
    for (const [i, limit] of limits.entries())
      expect(spent.get(`key-${i}`) ?? 0).toBeLessThanOrEqual(limit);
    const total = [...spent.values()].reduce((a, b) => a + b, 0);
    const left = (await workers[0]!.listKeys('race')).reduce((sum, k) => sum + k.remainingCalls, 0);
    expect(total + left).toBe(limits.reduce((a, b) => a + b, 0)); // nothing double-spent, nothing lost
    expect(results.filter((r) => r === undefined).length).toBeGreaterThan(0); // demand exceeded supply
    expect(left).toBeLessThan(3); // and the supply was used up except what no request could fit
  });

  it("takes the API's own figures for a key and tells when the earliest key refills", async () => {
    const manager = await openManager();
    await manager.setKey('report', {
      id: 'gh',
      key: 'token-report',
      limit: 5_000,
      intervalMs: 3_600_000,
    });
    const [registered] = await manager.listKeys('report');
    expect(manager.nextResetAt('report')).toBeUndefined();

    // Same window, the API has seen more use than we charged: the lower figure wins, its reset time is adopted.
    const resetAt = registered!.refreshAt - 60_000;
    await manager.reportRateLimit('report', 'token-report', { remaining: 3, resetAt });
    expect(await manager.listKeys('report')).toMatchObject([
      { id: 'gh', remainingCalls: 3, refreshAt: resetAt },
    ]);
    expect((await manager.acquire('report', 3))?.remainingCalls).toBe(0);
    expect(await manager.acquire('report', 1)).toBeUndefined();
    expect(manager.nextResetAt('report')).toBe(resetAt);

    // The API is already in a later window: its remaining calls replace ours.
    await manager.reportRateLimit('report', 'token-report', {
      remaining: 4_000,
      resetAt: resetAt + 3_600_000,
    });
    expect((await manager.acquire('report', 1))?.remainingCalls).toBe(3_999);
    expect(manager.nextResetAt('report')).toBeUndefined();
  });

  it('keeps secrets out of errors and listings', async () => {
    const manager = await openManager();
    await manager.setKey('secret', { key: 'ghp_very-secret-token', limit: 1, intervalMs: 1_000 });
    const error = (await manager.acquire('secret', 0).then(
      () => undefined,
      (e: unknown) => e,
    )) as (Error & { code: string }) | undefined;
    expect(error).toMatchObject({ code: 'KEY_REQUEST_INVALID' });
    expect(error!.message).toContain('secret');
    expect(error!.message).not.toContain('ghp_very-secret-token');
    expect(JSON.stringify(await manager.listKeys('secret'))).not.toContain('ghp_very-secret-token');
    const bad = (await RedisKeyManager.connect({ url: 'redis://:ghp_pw@127.0.0.1:1' }).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error;
    expect(bad).toBeInstanceOf(Error);
    expect(bad.message).not.toContain('ghp_pw');
  });

  it('is a keymanager component whose config registers keys', async () => {
    const manager = await redisKeyManager.create({
      url: redisUrl(),
      prefix,
      keys: { component: [{ key: 'from-config', limit: 2, intervalMs: 3_600_000 }] },
    });
    try {
      expect(redisKeyManager.kind).toBe('keymanager');
      expect((await manager.acquire('component', 2))?.key).toBe('from-config');
      expect(await manager.acquire('component', 1)).toBeUndefined();
    } finally {
      await manager.close?.();
    }
    await expect(
      redisKeyManager.create({ keys: { t: [{ key: '', limit: 0, intervalMs: 1 }] } } as never),
    ).rejects.toThrow();
  });
});
