import { redactText } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { openMongo, parseMongoUrl } from './connection.js';
import { mongoConnectionConfigSchema } from './connection.js';
import { MongoOutputSink } from './mongo-output.js';
import { mongoOutputConfigSchema } from './mongo-output.js';
import { everythingIn, mongoUrl } from './mongo-test-support.js';

const PASSWORD = 'p@ss/w:rd-Secr3t';
const config = (url: string, extra: object = {}) =>
  mongoConnectionConfigSchema.parse({ url, ...extra });

/** The harness's host and port with a user whose password needs percent-encoding. */
function urlWithPassword(port?: number): string {
  const url = new URL(mongoUrl());
  url.username = 'codefeedr';
  url.password = PASSWORD; // the URL class percent-encodes it
  if (port !== undefined) url.port = String(port);
  return url.href;
}

function expectNoSecret(error: unknown): void {
  const text = everythingIn(error);
  for (const leak of [PASSWORD, encodeURIComponent(PASSWORD), 'ss/w:rd', 'Secr3t'])
    expect(text).not.toContain(leak);
}

describe('MongoDB connections', () => {
  it('connects and learns the server, its document size limit and clock', async () => {
    const connection = await openMongo(config(mongoUrl()));
    try {
      expect(connection.server).toMatch(/^(FerretDB|MongoDB) /);
      expect(connection.maxDocumentBytes).toBe(16 * 1024 * 1024);
      expect(Math.abs(connection.clockOffsetMs)).toBeLessThan(60_000);
      expect(connection.hosts).toBe(new URL(mongoUrl()).host);
    } finally {
      await connection.client.close();
    }
  });

  it('fails fast on a refused connection, naming host:port, retryable', async () => {
    const started = Date.now();
    const error = await openMongo(config(urlWithPassword(1))).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({ code: 'MONGODB_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toContain('127.0.0.1:1');
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    // The default server selection timeout (3 s) bounds it, not the driver's 30 s.
    expect(elapsed).toBeLessThan(
      mongoConnectionConfigSchema.parse({}).serverSelectionTimeoutMs + 2_000,
    );
    expectNoSecret(error);
  });

  it('reports refused credentials as a permanent auth error without the password', async () => {
    const error = await openMongo(config(urlWithPassword())).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'MONGODB_AUTH_FAILED', retryable: false });
    expect((error as Error).message).toContain(new URL(mongoUrl()).host);
    expectNoSecret(error);
    // The driver's own error is kept as the cause; core's redaction knows the password now.
    expect(redactText(`x ${PASSWORD} y`)).toBe('x [REDACTED] y');
  });

  it('refuses a password written without percent-encoding, quoting nothing of it', async () => {
    const [host] = new URL(mongoUrl()).host.split(',');
    const unencoded = `mongodb://codefeedr:${PASSWORD}@${host}/`;
    const error = (() => {
      try {
        parseMongoUrl(unencoded, config(unencoded));
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'MONGODB_URL_INVALID', retryable: false });
    expect((error as Error).message).toMatch(/percent-encoded/);
    expectNoSecret(error);
    // And through a stage: the same error, from open().
    const sink = new MongoOutputSink(
      mongoOutputConfigSchema.parse({ url: unencoded, collection: 'c' }),
    );
    const fromSink = await sink.open().catch((e: unknown) => e);
    expect(fromSink).toMatchObject({ code: 'MONGODB_URL_INVALID' });
    expectNoSecret(fromSink);
  });

  it('refuses what is not a MongoDB connection string', () => {
    expect(() => parseMongoUrl('http://u:hunter22@x/', config('http://u:hunter22@x/'))).toThrow(
      expect.objectContaining({
        code: 'MONGODB_URL_INVALID',
        message: expect.not.stringContaining('hunter22'),
      }),
    );
  });
});
