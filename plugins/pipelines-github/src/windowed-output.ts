import {
  ndjsonFileOutput,
  printerOutput,
  z,
  type MessageType,
  type OutputStage,
} from '@codefeedr/core';
import { mongoOutput } from '@codefeedr/plugin-mongodb';
import { postgresOutputFor } from '@codefeedr/plugin-postgres';
import { DEFAULT_MONGODB_URL, DEFAULT_POSTGRES_URL } from './database-defaults.js';

/** Where a windowed pipeline writes its results; the settings the four outputs need. */
export const windowedOutputShape = {
  output: z
    .enum(['console', 'ndjson', 'postgres', 'mongodb'])
    .default('console')
    .describe(
      'console: one JSON line per result on stdout; ndjson: a file (`path`); postgres / mongodb: a table / collection (`url`, `table`), upserted by the result id.',
    ),
  path: z
    .string()
    .min(1)
    .optional()
    .describe('NDJSON file for output: ndjson (truncated first); default: <pipeline>.ndjson.'),
  url: z
    .string()
    .min(1)
    .optional()
    .describe(
      `Database connection string; default: DATABASE_URL (else ${DEFAULT_POSTGRES_URL}) for postgres, MONGODB_URL (else ${DEFAULT_MONGODB_URL}) for mongodb. A password in it is never logged.`,
    ),
  password: z
    .string()
    .optional()
    .describe('PostgreSQL password, overriding one in `url` (default: PGPASSWORD); never logged.'),
  database: z
    .string()
    .regex(/^[^/\\. "$*<>:|?]+$/, 'a MongoDB database name (no /\\. "$*<>:|?)')
    .default('codefeedr')
    .describe('MongoDB database of the collection.'),
  table: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/, 'a plain identifier')
    .optional()
    .describe(
      'Table (postgres, `schema.table` allowed) or collection (mongodb); default: github_<pipeline, with _>.',
    ),
};

export type WindowedOutputConfig = z.output<z.ZodObject<typeof windowedOutputShape>>;

/**
 * The output stage `id` for results of `type`, which carry a unique `id` field. Upserts go by
 * it, so a rerun or a replay after a crash stores each window once. The transforms key each
 * result by its id too, which MongoDB turns into `_id` (FerretDB finds only `_id` by index).
 */
export function windowedOutput<T extends { id: string }>(
  id: string,
  pipelineName: string,
  type: MessageType<T>,
  config: WindowedOutputConfig,
): OutputStage<readonly [T]> {
  const table = config.table ?? `github_${pipelineName.replaceAll('-', '_')}`;
  switch (config.output) {
    case 'console':
      return printerOutput.create(id, { format: 'json' }) as OutputStage<readonly [T]>;
    case 'ndjson':
      return ndjsonFileOutput.create(id, {
        path: config.path ?? `${pipelineName}.ndjson`,
        mode: 'truncate',
      }) as OutputStage<readonly [T]>;
    case 'postgres': {
      const password = config.password ?? process.env.PGPASSWORD;
      return postgresOutputFor(type).create(id, {
        url: config.url ?? process.env.DATABASE_URL ?? DEFAULT_POSTGRES_URL,
        ...(password !== undefined ? { password } : {}),
        table,
        key: 'id',
        mode: 'upsert',
      });
    }
    case 'mongodb':
      return mongoOutput.create(id, {
        url: config.url ?? process.env.MONGODB_URL ?? DEFAULT_MONGODB_URL,
        database: config.database,
        collection: table,
        mode: 'upsert',
      }) as OutputStage<readonly [T]>;
  }
}
