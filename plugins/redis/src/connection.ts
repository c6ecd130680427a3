import { registerSecret, z } from '@codefeedr/core';
import { Redis } from 'ioredis';
import { RedisAuthError, RedisUnavailableError, RedisUrlError } from './errors.js';

/** The `url` setting every Redis component shares. */
export const redisUrlSchema = z
  .string()
  .min(1)
  .default('redis://127.0.0.1:6379')
  .describe('Redis URL (redis://[user:password@]host:port[/db]); use ${ENV} for the password.');

/** Where and how to connect, from a `url` setting (see parseRedisUrl). */
export interface RedisTarget {
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
}

/**
 * Parses `redis[s]://[user[:password]@]host[:port][/db]` with the WHATWG URL class. A
 * password written as it is — `${REDIS_PASSWORD}` holding `@`, `/`, `:` or `%` — is split off
 * at the last `@` before the host first, so it never becomes part of the host or the path;
 * percent-encoded userinfo (`p%40ss`) is decoded as URLs define. The password is registered as
 * a secret, in every form a message could show it.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^(rediss?):\/\//i.exec(url.trim());
  if (!scheme) throw new RedisUrlError('it must start with redis:// or rediss://');
  const rest = url.trim().slice(scheme[0].length);
  const at = rest.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : rest.slice(0, at);
  let parsed: URL;
  try {
    parsed = new URL(`${scheme[1]!.toLowerCase()}://${at < 0 ? rest : rest.slice(at + 1)}`);
  } catch {
    throw new RedisUrlError('the host part is not a valid host[:port][/db]');
  }
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    username = decodeUserinfo(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
    password = colon < 0 ? undefined : decodeUserinfo(userinfo.slice(colon + 1));
    // `redis://secret@host` (no colon) is a password, as redis-cli and ioredis read it.
    if (colon < 0) [username, password] = [undefined, username];
    if (password !== undefined && password !== '') registerSecret(password);
  }
  const dbText = parsed.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0)
    throw new RedisUrlError(`the database "/${dbText}" is not a number`);
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    username,
    password: password === '' ? undefined : password,
    db,
    tls: scheme[1]!.toLowerCase() === 'rediss',
  };
}

/** `%40` → `@` where the text is percent-encoded; a lone `%` (as in `50%off`) stays as written. */
function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `host:port` of a Redis URL without user or password, for messages. */
export function redisAddress(url: string): string {
  try {
    const { host, port } = parseRedisUrl(url);
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  } catch {
    return '(unparseable url)';
  }
}

/**
 * Opens an ioredis connection and waits until it is ready, so a wrong URL fails at
 * startup with a clear message instead of at the first command. After that ioredis
 * reconnects on its own (commands queue while it does). The URL is parsed here and ioredis
 * gets its parts, so no client code pastes or re-parses a string holding the password.
 */
export async function openRedis(url: string, connectionName: string): Promise<Redis> {
  const target = parseRedisUrl(url);
  const client = new Redis({
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls ? { tls: { servername: target.host } } : {}),
    lazyConnect: true,
    connectionName,
    // Capped backoff; the default also retries forever, only slower at first.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
  // Without a listener ioredis prints every reconnect error to stderr; callers see errors on
  // commands. The last one is kept: when connecting fails, it says why ("WRONGPASS") where
  // connect() only says "Connection is closed".
  let last: unknown;
  client.on('error', (error) => (last = error));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const why = last ?? error;
    if (
      /WRONGPASS|NOAUTH|invalid (username-)?password|NOPERM/i.test(
        String((why as Error)?.message ?? why),
      )
    )
      throw new RedisAuthError(redisAddress(url), why);
    throw new RedisUnavailableError(redisAddress(url), why);
  }
  return client;
}
