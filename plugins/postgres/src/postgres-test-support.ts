// Shared by this package's tests: the harness's server and throwaway table names.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The test PostgreSQL (vitest global setup sets the variable; trust auth, user postgres). */
export function postgresUrl(): string {
  const url = process.env['CODEFEEDR_POSTGRES_URL'];
  if (url === undefined || url === '')
    throw new Error(
      'CODEFEEDR_POSTGRES_URL is not set: run the tests through vitest (its global setup starts PostgreSQL)',
    );
  return url;
}

/** A table name no other test (or earlier run) uses. */
export function uniqueTable(prefix: string): string {
  return `cf_${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** A plain pg client for the tests' own checks, independent of the code under test. */
export async function rawClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  return client;
}

/** Runs `work` with a fresh raw client, then closes it. */
export async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await rawClient();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function dropTables(...tables: string[]): Promise<void> {
  await withClient(async (client) => {
    for (const table of tables)
      await client.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)}`);
  });
}
