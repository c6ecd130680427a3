// The Redis state store (`stateStore: 'buffer'` on the Redis buffer) against the shared suite:
// each store is another worker's buffer connection.
import { stateStoreConformanceSuite } from '@codefeedr/testkit';
import { afterAll } from 'vitest';
import { RedisBuffer } from './buffer.js';
import { deleteByPrefix, rawRedis, redisUrl, uniquePrefix } from './redis-test-support.js';

const prefix = uniquePrefix('state');
const buffers: RedisBuffer[] = [];

afterAll(async () => {
  for (const buffer of buffers) await buffer.close();
  const raw = rawRedis();
  await deleteByPrefix(raw, prefix);
  raw.disconnect();
});

stateStoreConformanceSuite({
  name: 'redis',
  create: async () => {
    const buffer = await RedisBuffer.connect({ url: redisUrl(), prefix });
    buffers.push(buffer);
    return buffer.stateStore();
  },
});
