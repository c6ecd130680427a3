// Test-only helpers shared by this package's test files (not exported from index.ts).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The harness's Redis (CODEFEEDR_REDIS_URL); fails loudly when it is not set. */
export function redisUrl(): string {
  const url = process.env.CODEFEEDR_REDIS_URL;
  if (!url)
    throw new Error(
      'CODEFEEDR_REDIS_URL is not set: run the tests through the root vitest config (its globalSetup starts Redis) or `npm run services:up`.',
    );
  return url;
}

/** A key prefix no other test run uses, so test files never see each other's data. */
export function uniquePrefix(label: string): string {
  return `cftest-${label}-${randomBytes(4).toString('hex')}`;
}

export function rawRedis(): Redis {
  return new Redis(redisUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 });
}

/** Waits until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined && result !== false) return result;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function deleteByPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}
