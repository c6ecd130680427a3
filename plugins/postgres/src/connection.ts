import { registerSecret, z } from '@codefeedr/core';
import pg from 'pg';
import {
  PostgresLoginError,
  PostgresUnavailableError,
  PostgresUrlInvalidError,
  codeOf,
} from './errors.js';

const DEFAULT_PORT = 5432;

/** The connection settings every PostgreSQL component shares. */
export const postgresConnectionSchema = z.object({
  url: z
    .string()
    .min(1)
    .default('postgres://postgres@127.0.0.1:5432/postgres')
    .refine((url) => parseUrl(url) instanceof URL, {
      // zod never echoes the input here, so a password in it stays out of the message.
      message:
        'must be a postgres:// URL (postgres://user@host:port/database); percent-encode @ / : in a password or pass it as `password`',
    })
    .describe(
      'postgres://user[:password]@host[:port]/database (sslmode=disable|require|verify-full allowed); put the password in `password` (${PGPASSWORD}) rather than here.',
    ),
  password: z
    .string()
    .optional()
    .describe('Password; overrides one in `url`. Use ${PGPASSWORD}: it is never logged.'),
  connectTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Give up connecting after this long (the error names host and port).'),
  applicationName: z
    .string()
    .min(1)
    .default('codefeedr')
    .describe('application_name the server shows in pg_stat_activity.'),
});

export type PostgresConnectionConfig = z.output<typeof postgresConnectionSchema>;

/** Where a pool connects, without the password: safe for messages and metrics. */
export interface PostgresEndpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** `host:port`, as messages name it. */
  readonly address: string;
}

function parseUrl(url: string): URL | undefined {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return undefined;
    if (parsed.hostname === '') return undefined;
    // An unencoded / in a password ends the host part early: the rest lands in the path.
    if (parsed.pathname.includes('@') || parsed.search.includes('@') || parsed.hash !== '')
      return undefined;
    return parsed;
  } catch {
    return undefined;
  }
}

/**
 * pg's settings for `config`, built from the parsed URL field by field (never by pasting
 * strings), and the endpoint for messages. The password is registered with core's
 * redaction, so it is hidden wherever a log line or error might carry it.
 */
export function postgresPoolConfig(
  config: PostgresConnectionConfig,
  overrides: pg.PoolConfig = {},
): { pool: pg.PoolConfig; endpoint: PostgresEndpoint } {
  const url = parseUrl(config.url);
  if (url === undefined) throw new PostgresUrlInvalidError('not a postgres:// URL with a host');
  let password: string | undefined;
  let user: string;
  let database: string;
  try {
    password =
      config.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password));
    user = url.username === '' ? 'postgres' : decodeURIComponent(url.username);
    database = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : user;
  } catch {
    throw new PostgresUrlInvalidError(
      'a percent-escape in the user, password or database is malformed',
    );
  }
  if (password !== undefined) {
    registerSecret(password);
    registerSecret(encodeURIComponent(password));
  }
  if (url.password !== '') registerSecret(url.password);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  const sslmode = url.searchParams.get('sslmode');
  let ssl: pg.PoolConfig['ssl'];
  if (sslmode === null || sslmode === 'disable' || sslmode === 'prefer' || sslmode === 'allow')
    ssl = false;
  else if (sslmode === 'require' || sslmode === 'no-verify') ssl = { rejectUnauthorized: false };
  else if (sslmode === 'verify-ca' || sslmode === 'verify-full') ssl = true;
  else
    throw new PostgresUrlInvalidError(
      `sslmode=${sslmode} is not one of disable, require, verify-ca, verify-full`,
    );
  return {
    pool: {
      host,
      port,
      user,
      database,
      ...(password === undefined ? {} : { password }),
      ssl,
      application_name: config.applicationName,
      connectionTimeoutMillis: config.connectTimeoutMs,
      ...overrides,
    },
    endpoint: { host, port, user, database, address: `${url.hostname}:${port}` },
  };
}

/**
 * Opens a pg Pool and proves it with one connection, so a wrong host, port or password
 * fails at startup with a clear error instead of at the first batch. The pool reconnects
 * by itself afterwards: a connection that broke is discarded on release.
 */
export async function openPostgresPool(
  config: PostgresConnectionConfig,
  overrides: pg.PoolConfig = {},
): Promise<{ pool: pg.Pool; endpoint: PostgresEndpoint }> {
  const { pool: poolConfig, endpoint } = postgresPoolConfig(config, overrides);
  const pool = new pg.Pool(poolConfig);
  // An idle connection dropped by the server emits here; the next query reconnects.
  pool.on('error', () => {});
  // A checked-out one whose socket dies emits on itself; the failing query reports it.
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw connectError(endpoint, error);
  }
  return { pool, endpoint };
}

/** The error to raise when connecting to `endpoint` failed with `error`. */
export function connectError(endpoint: PostgresEndpoint, error: unknown): Error {
  const code = codeOf(error);
  // 28xxx: invalid authorization; 3D000: no such database. Permanent until the config changes.
  if (code !== undefined && (code.startsWith('28') || code === '3D000'))
    return new PostgresLoginError(endpoint.address, endpoint.user, endpoint.database, error);
  // Refused, timed out, reset, unknown host: the server may come up; the runtime may retry.
  return new PostgresUnavailableError(endpoint.address, error);
}
