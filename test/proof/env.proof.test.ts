// Global setup runs in vitest's main process; this test runs in a forked worker. The
// variables must arrive here for every package's tests to find the servers.
import { describe, expect, it } from 'vitest';
import { endpointEnv } from '../services/endpoints.ts';

describe('service endpoints in the test environment', () => {
  it('reach forked test workers through process.env', () => {
    // pool 'forks': this worker is a child_process.fork of vitest's main process, which
    // is where global setup assigned the variables.
    expect(typeof process.send).toBe('function');
    const expected = endpointEnv();
    expect(Object.keys(expected).sort()).toEqual([
      'CODEFEEDR_KAFKA_BROKERS',
      'CODEFEEDR_MONGODB_URL',
      'CODEFEEDR_NPM_REGISTRY',
      'CODEFEEDR_POSTGRES_URL',
      'CODEFEEDR_REDIS_URL',
    ]);
    for (const [name, value] of Object.entries(expected))
      expect(process.env[name], name).toBe(value);
    expect(process.env.CODEFEEDR_NPM_REGISTRY).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });
});
