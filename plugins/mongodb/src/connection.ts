import { registerSecret, z } from '@codefeedr/core';
import { MongoClient, type Db } from 'mongodb';
import { MongoConnectionStringError, mongoOperationError } from './errors.js';

/** The connection settings every MongoDB component shares. */
export const mongoConnectionConfigSchema = z.object({
  url: z
    .string()
    .min(1)
    .default('mongodb://127.0.0.1:27017/')
    .describe(
      'MongoDB connection string (mongodb://[user:password@]host[:port][,...][/authdb][?options]); percent-encode the user and password and pass the password through ${ENV}.',
    ),
  database: z
    .string()
    .min(1)
    .regex(/^[^/\\. "$*<>:|?]+$/, 'a MongoDB database name (no /\\. "$*<>:|?)')
    .default('codefeedr')
    .describe('Database to use (the URL path is only the authentication database).'),
  serverSelectionTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(3_000)
    .describe('How long to look for a server before failing; small so a wrong host fails fast.'),
});

export type MongoConnectionConfig = z.output<typeof mongoConnectionConfigSchema>;

/** An open client, the database of the config and the hosts (no credentials) for messages. */
export interface MongoConnection {
  readonly client: MongoClient;
  readonly db: Db;
  /** `host:port[,host:port]`, safe to show. */
  readonly hosts: string;
  readonly timeoutMs: number;
  /** The server's largest document (hello.maxBsonObjectSize). */
  readonly maxDocumentBytes: number;
  /** e.g. `FerretDB v1.24.2` or `MongoDB 7.0.14`, for messages. */
  readonly server: string;
  /** The server is FerretDB (the MongoDB protocol over another database), which has its own limits. */
  readonly ferretdb: boolean;
  /** Server clock minus local clock at connect (ms), from hello.localTime. */
  readonly clockOffsetMs: number;
}

/**
 * Parses `url` with the driver's own parser (a MongoClient parses in its constructor) and
 * registers the password as a secret, so core's redaction hides it in every log line and
 * error message. The parser is lenient: an unencoded `/` in a password ends the host part,
 * leaving `@` in the database path, which it then takes for the database name; that is refused
 * here with a message that quotes nothing (the "host" it found would be part of the password).
 */
export function parseMongoUrl(url: string, config: MongoConnectionConfig): MongoClient {
  registerUrlSecrets(url);
  let client: MongoClient;
  try {
    client = new MongoClient(url, {
      serverSelectionTimeoutMS: config.serverSelectionTimeoutMs,
      connectTimeoutMS: config.serverSelectionTimeoutMs,
      appName: 'codefeedr',
      ignoreUndefined: true,
    });
  } catch (error) {
    throw new MongoConnectionStringError(
      error instanceof Error ? error.message : String(error),
      error,
    );
  }
  const password = client.options.credentials?.password;
  if (password) registerSecret(password);
  if (/[@/:]/.test(client.options.dbName))
    throw new MongoConnectionStringError(
      "its path has '@', '/' or ':' (a user or password with unencoded '@', '/' or ':'?)",
    );
  return client;
}

/** The password as written and decoded, when the WHATWG URL parser can read the URL (one host). */
function registerUrlSecrets(url: string): void {
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      registerSecret(parsed.password);
      registerSecret(decodeURIComponent(parsed.password));
    }
  } catch {
    // Several hosts, or not a URL at all: the driver's parser has the final word.
  }
}

/** `host:port,...` of a parsed client; never includes credentials. */
export function mongoHosts(client: MongoClient): string {
  const hosts = client.options.hosts.map(String);
  if (client.options.srvHost) return `${client.options.srvHost} (SRV)`;
  return hosts.join(',');
}

/**
 * Connects and asks the server who it is, so a wrong host, port or password fails at start
 * with a clear error (host:port, never the password) instead of at the first write.
 */
export async function openMongo(config: MongoConnectionConfig): Promise<MongoConnection> {
  const client = parseMongoUrl(config.url, config);
  const hosts = mongoHosts(client);
  try {
    await client.connect();
    const admin = client.db('admin');
    const sentAt = Date.now();
    const hello = (await admin.command({ hello: 1 })) as {
      maxBsonObjectSize?: number;
      localTime?: Date;
    };
    const receivedAt = Date.now();
    const info = (await admin.command({ buildInfo: 1 })) as {
      version?: string;
      ferretdbVersion?: string;
    };
    const server = info.ferretdbVersion
      ? `FerretDB ${info.ferretdbVersion}`
      : `MongoDB ${info.version ?? '(unknown version)'}`;
    const clockOffsetMs =
      hello.localTime instanceof Date
        ? hello.localTime.getTime() - Math.round((sentAt + receivedAt) / 2)
        : 0;
    return {
      client,
      db: client.db(config.database),
      hosts,
      timeoutMs: config.serverSelectionTimeoutMs,
      maxDocumentBytes: hello.maxBsonObjectSize ?? 16 * 1024 * 1024,
      server,
      ferretdb: info.ferretdbVersion !== undefined,
      clockOffsetMs,
    };
  } catch (error) {
    await client.close().catch(() => undefined);
    throw mongoOperationError('connect', hosts, hosts, config.serverSelectionTimeoutMs, error);
  }
}
