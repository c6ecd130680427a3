import { z } from '@codefeedr/core';
import { Redis } from 'ioredis';
import { RedisUnavailableError } from './errors.js';

/** The `url` setting every Redis component shares. */
export const redisUrlSchema = z
  .string()
  .min(1)
  .default('redis://127.0.0.1:6379')
  .describe('Redis URL (redis://[user:password@]host:port[/db]); use ${ENV} for the password.');

/** `redis://host:port/db` without user or password, for messages. */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return '(unparseable url)';
  }
}

/**
 * Opens an ioredis connection and waits until it is ready, so a wrong URL fails at
 * startup with a clear message instead of at the first command. After that ioredis
 * reconnects on its own (commands queue while it does).
 */
export async function openRedis(url: string, connectionName: string): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectionName,
    // Capped backoff; the default also retries forever, only slower at first.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
  // Without a listener ioredis prints every reconnect error to stderr; callers see errors on commands.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new RedisUnavailableError(redisAddress(url), error);
  }
  return client;
}
