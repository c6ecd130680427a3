import { bufferConformanceSuite } from '@codefeedr/testkit';
import { afterAll } from 'vitest';
import { RedisBuffer } from './buffer.js';
import { deleteByPrefix, rawRedis, redisUrl, uniquePrefix } from './redis-test-support.js';

const prefix = uniquePrefix('conformance');
// Short heartbeats and leases so rebalances and crash take-overs settle in about a second.
const config = {
  url: redisUrl(),
  prefix,
  heartbeatMs: 100,
  leaseMs: 1_000,
  claimMinIdleMs: 500,
  claimIntervalMs: 200,
};

bufferConformanceSuite({
  name: 'redis',
  create: () => RedisBuffer.connect(config),
  capabilities: { transactions: false, replay: true },
  worker: { module: new URL('./index.ts', import.meta.url), export: 'redisBuffer', config },
  rebalanceTimeoutMs: 30_000,
});

afterAll(async () => {
  const raw = rawRedis();
  await deleteByPrefix(raw, prefix);
  raw.disconnect();
});
