// Two events inputs (two workers) sharing tokens through the Redis key manager of
// @codefeedr/plugin-redis, against real Redis and the GitHub API double.
import { randomUUID } from 'node:crypto';
import type { Logger } from '@codefeedr/core';
import { eventsInput, type GitHubEventsSource } from '@codefeedr/plugin-github';
import { RedisKeyManager } from '@codefeedr/plugin-redis';
import { describe, expect, it } from 'vitest';
import { GitHubApiDouble } from './github-api-double/server.ts';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

function redisUrl(): string {
  const url = process.env.CODEFEEDR_REDIS_URL;
  if (!url) {
    throw new Error(
      'CODEFEEDR_REDIS_URL is not set: run through the root vitest config (its globalSetup starts Redis) or `npm run services:up`.',
    );
  }
  return url;
}

describe('events input with the Redis key manager', () => {
  it('rotates away from an exhausted token and keeps the shared budget in step with GitHub', async () => {
    const double = await GitHubApiDouble.start({ pollIntervalSeconds: 0.01 });
    const hour = 3_600_000;
    const manager = await RedisKeyManager.connect({
      url: redisUrl(),
      prefix: `codefeedr:test:github:${randomUUID()}`,
      keys: {
        github: [
          { key: 'ghp_exhausted', limit: 5_000, intervalMs: hour, id: 'exhausted' },
          { key: 'ghp_fresh', limit: 5_000, intervalMs: hour, id: 'fresh' },
        ],
      },
    });
    try {
      double.exhaust('ghp_exhausted', 3_600);
      double.advance(60);
      const open = async () =>
        (await eventsInput
          .create('events', { baseUrl: double.url, keyManager: manager, retryBaseDelayMs: 10 })
          .createSource({
            stageId: 'events',
            pipelineName: 'test',
            logger: silent,
            signal: new AbortController().signal,
          })) as GitHubEventsSource;
      const workers = [await open(), await open()];
      const signal = new AbortController().signal;
      for (const worker of workers) {
        const emitted: unknown[] = [];
        const deadline = Date.now() + 15_000;
        while (emitted.length < 60) {
          if (Date.now() > deadline) throw new Error(`only ${emitted.length} of 60 events`);
          emitted.push(...(await worker.poll(100, signal)));
        }
        expect(worker.metrics.rateLimitWaitMs).toBe(0);
      }
      const ok = double.requests.filter((r) => r.status === 200);
      expect(ok.length).toBeGreaterThan(0);
      expect(ok.every((r) => r.token === 'ghp_fresh')).toBe(true);
      // After GitHub's figures were reported back, Redis holds what the double says is left.
      const keys = await manager.listKeys('github');
      expect(keys.find((k) => k.id === 'fresh')!.remainingCalls).toBe(
        double.remaining('ghp_fresh'),
      );
      expect(keys.find((k) => k.id === 'exhausted')!.remainingCalls).toBe(0);
    } finally {
      await manager.close();
      await double.close();
    }
  });
});
