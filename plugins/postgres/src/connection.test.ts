import { createServer } from 'node:net';
import { ConfigError, isRetryable, redactSecrets, silentLogger } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { openPostgresPool, postgresConnectionSchema, postgresPoolConfig } from './connection.js';
import { PostgresLoginError, PostgresUnavailableError, PostgresUrlInvalidError } from './errors.js';
import {
  PostgresOutputSink,
  postgresOutput,
  postgresOutputConfigSchema,
} from './postgres-output.js';
import { PostgresInputSource, postgresInputConfigSchema } from './postgres-input.js';
import { postgresUrl } from './postgres-test-support.js';

// A password with every character that breaks naive URL pasting.
const PASSWORD = 'p@ss/w:rd?#%s3cret';

/** A loopback port with nothing listening: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Every way an error can be shown: message, stack, String(), the JSON a logger writes. */
function everyRendering(error: unknown): string {
  const e = error as Error & { details?: unknown; cause?: unknown };
  return [
    e.message,
    e.stack,
    String(e),
    JSON.stringify(e.details),
    JSON.stringify(redactSecrets(e)),
    String((e.cause as Error | undefined)?.message),
  ].join('\n');
}

function expectNoSecret(error: unknown): void {
  const text = everyRendering(error);
  for (const form of [PASSWORD, encodeURIComponent(PASSWORD), 's3cret'])
    expect(text).not.toContain(form);
}

describe('PostgreSQL connections', () => {
  it('fails fast on a refused connection, naming host:port, retryable', async () => {
    const port = await closedPort();
    const started = Date.now();
    const error = await openPostgresPool(
      postgresConnectionSchema.parse({
        url: `postgres://app@127.0.0.1:${port}/db`,
        password: PASSWORD,
      }),
    ).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(PostgresUnavailableError);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(isRetryable(error)).toBe(true);
    expectNoSecret(error);
  });

  it('keeps a password with @ / : out of every error, whether in `password` or percent-encoded in `url`', async () => {
    const port = await closedPort();
    const inUrl = `postgres://app:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/db`;
    for (const settings of [
      { url: inUrl },
      { url: `postgres://app@127.0.0.1:${port}/db`, password: PASSWORD },
    ]) {
      const stage = postgresOutput.create('o', { ...settings, table: 'events' });
      const sinkError = await Promise.resolve(
        stage.createSink({
          stageId: 'o',
          pipelineName: 'p',
          logger: silentLogger,
          signal: new AbortController().signal,
        }),
      ).catch((e: unknown) => e);
      expect(sinkError).toBeInstanceOf(PostgresUnavailableError);
      expectNoSecret(sinkError);
      const sourceError = await PostgresInputSource.open(
        postgresInputConfigSchema.parse({ ...settings, table: 'events', orderBy: 'id' }),
      ).catch((e: unknown) => e);
      expect(sourceError).toBeInstanceOf(PostgresUnavailableError);
      expectNoSecret(sourceError);
    }
  });

  it('passes the password to the driver as given, decoded from the URL', () => {
    const { pool, endpoint } = postgresPoolConfig(
      postgresConnectionSchema.parse({
        url: `postgresql://app:${encodeURIComponent(PASSWORD)}@db.internal:6543/analytics`,
      }),
    );
    expect(pool).toMatchObject({
      host: 'db.internal',
      port: 6543,
      user: 'app',
      database: 'analytics',
      password: PASSWORD,
    });
    expect(endpoint.address).toBe('db.internal:6543');
    expect(
      postgresPoolConfig(postgresConnectionSchema.parse({ url: 'postgres://h' })).pool,
    ).toMatchObject({ port: 5432, user: 'postgres', database: 'postgres' });
  });

  it('refuses an unencoded password in the URL without showing any of it', () => {
    const raw = `postgres://app:${PASSWORD}@127.0.0.1:5433/db`;
    const error = (() => {
      try {
        postgresOutput.create('o', { url: raw, table: 'events' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('percent-encode');
    expectNoSecret(error);
    expect(() => postgresPoolConfig({ ...postgresConnectionSchema.parse({}), url: raw })).toThrow(
      PostgresUrlInvalidError,
    );
  });

  it('reports a database the server does not have as a login problem, not retryable, without the password', async () => {
    const url = new URL(postgresUrl());
    url.password = encodeURIComponent(PASSWORD);
    url.pathname = '/no_such_database_here';
    const error = await PostgresOutputSink.open(
      postgresOutputConfigSchema.parse({ url: url.href, table: 'events' }),
      { stageId: 'o', pipelineName: 'p' },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresLoginError);
    expect((error as Error).message).toContain(`${url.hostname}:${url.port}`);
    expect((error as Error).message).toContain('no_such_database_here');
    expect((error as Error).message).toContain('3D000');
    expect(isRetryable(error)).toBe(false);
    expectNoSecret(error);
  });
});
