import { randomBytes } from 'node:crypto';
import { redactText } from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { openRedis, parseRedisUrl, redisAddress } from './connection.js';
import { RedisAuthError, RedisUrlError } from './errors.js';
import { rawRedis, redisUrl } from './redis-test-support.js';

const admin = rawRedis();
const users: string[] = [];
afterAll(async () => {
  for (const user of users) await admin.call('ACL', 'DELUSER', user);
  admin.disconnect();
});

/** A Redis ACL user with `password` (the harness's server has no auth by default). */
async function userWith(password: string): Promise<string> {
  const user = `cftest-${randomBytes(4).toString('hex')}`;
  users.push(user);
  await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all');
  return user;
}

describe('Redis url setting', () => {
  const { hostname, port } = new URL(redisUrl());

  it('takes a password holding @ / : % and spaces as written, and authenticates with it', async () => {
    const password = `p@ss/w:rd%zz x@y/${randomBytes(3).toString('hex')}`;
    const user = await userWith(password);
    const url = `redis://${user}:${password}@${hostname}:${port}/2`;
    expect(parseRedisUrl(url)).toEqual({
      host: hostname,
      port: Number(port),
      username: user,
      password,
      db: 2,
      tls: false,
    });
    // The address is the host, never a piece of the password.
    expect(redisAddress(url)).toBe(`${hostname}:${port}`);
    const client = await openRedis(url, 'connection-test');
    try {
      expect(await client.call('ACL', 'WHOAMI')).toBe(user);
    } finally {
      client.disconnect();
    }
    // Registered as a secret: gone from any text, raw or percent-encoded.
    expect(redactText(`auth ${password} / ${encodeURIComponent(password)}`)).not.toMatch(
      /p@ss|p%40ss/,
    );
  });

  it('decodes a percent-encoded password (as URLs define), and reads redis://password@host', async () => {
    const password = `sec ret@${randomBytes(3).toString('hex')}`;
    const user = await userWith(password);
    const encoded = encodeURIComponent(password);
    const client = await openRedis(`redis://${user}:${encoded}@${hostname}:${port}`, 'encoded');
    client.disconnect();
    expect(parseRedisUrl(`redis://${encoded}@h:1`)).toMatchObject({
      username: undefined,
      password,
    });
    expect(parseRedisUrl('rediss://[::1]:7000')).toMatchObject({
      host: '::1',
      port: 7000,
      tls: true,
      db: 0,
    });
  });

  it('a wrong password is an authentication error naming host:port only, not retryable', async () => {
    const user = await userWith(`right-${randomBytes(4).toString('hex')}`);
    const wrong = `wr@ng/pa:ss ${randomBytes(3).toString('hex')}`;
    const error = await openRedis(`redis://${user}:${wrong}@${hostname}:${port}`, 'wrong').catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RedisAuthError);
    expect((error as RedisAuthError).retryable).toBe(false);
    expect((error as Error).message).toContain(`${hostname}:${port}`);
    for (const piece of [wrong, ...wrong.split(/[@/:]/).filter((p) => p.length > 3)])
      expect((error as Error).message).not.toContain(piece);
  });

  it('a value that is not a Redis URL is a config error that does not print it', () => {
    for (const bad of ['127.0.0.1:6379', 'http://h:1', 'redis://h:1/zero']) {
      let error: unknown;
      try {
        parseRedisUrl(bad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(RedisUrlError);
      expect((error as RedisUrlError).code).toBe('CONFIG_INVALID');
    }
  });
});
