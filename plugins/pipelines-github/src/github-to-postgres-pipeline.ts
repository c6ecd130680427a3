import { PipelineBuilder, definePipeline, parseConfig, z, type Pipeline } from '@codefeedr/core';
import { postgresOutputFor } from '@codefeedr/plugin-postgres';
import { DEFAULT_POSTGRES_URL } from './database-defaults.js';
import {
  addGitHubEventRoutes,
  gitHubEventSourceShape,
  storeLayoutSchema,
  storeNameOf,
  storePrefixSchema,
} from './github-event-routes.js';

export const githubToPostgresConfigSchema = z
  .object({
    ...gitHubEventSourceShape,
    url: z
      .string()
      .min(1)
      .optional()
      .describe(
        `postgres://user@host:port/database; default: DATABASE_URL, else ${DEFAULT_POSTGRES_URL}. A password in it is never logged (better: \`password\`).`,
      ),
    password: z
      .string()
      .optional()
      .describe('Password, overriding one in `url` (default: PGPASSWORD); never logged.'),
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a plain schema name')
      .optional()
      .describe('PostgreSQL schema of the tables (default: the search path, usually public).'),
    prefix: storePrefixSchema,
    layout: storeLayoutSchema,
  })
  .strict();

export type GitHubToPostgresOptions = z.input<typeof githubToPostgresConfigSchema>;

/**
 * The pipeline's stages, unbuilt, for callers that add a buffer or stage options:
 *
 *   events ──┬─▶ push-events ──▶ store-push-events     (<prefix>push_events)
 *            ├─▶ …  one typed transform and table per event type
 *            └─▶ other-events ──▶ store-other-events   (<prefix>other_events: untyped types)
 *
 * Every table is created from its message type's JSON Schema (id primary key, typed scalar
 * columns, jsonb objects, `extra` for fields the schema does not name) and upserted by the
 * event id, so a rerun or a replay after a crash writes nothing twice.
 */
export function githubToPostgresBuilder(options: GitHubToPostgresOptions = {}): PipelineBuilder {
  const config = parseConfig('github-to-postgres', githubToPostgresConfigSchema, options);
  const url = config.url ?? process.env.DATABASE_URL ?? DEFAULT_POSTGRES_URL;
  const password = config.password ?? process.env.PGPASSWORD;
  const builder = new PipelineBuilder('github-to-postgres');
  for (const route of addGitHubEventRoutes(builder, config)) {
    const table = storeNameOf(route, config.prefix, config.layout);
    const store = postgresOutputFor(route.messageType).create(`store-${route.stageId}`, {
      url,
      ...(password !== undefined ? { password } : {}),
      table: config.schema ? `${config.schema}.${table}` : table,
      key: 'id',
      mode: 'upsert',
    });
    builder.edge(route.stage, store);
  }
  return builder;
}

export function githubToPostgresPipeline(options: GitHubToPostgresOptions = {}): Pipeline {
  return githubToPostgresBuilder(options).build();
}

/** `@codefeedr/pipelines-github:github-to-postgres` — `npx codefeedr run github-to-postgres`. */
export const githubToPostgres = definePipeline({
  name: 'github-to-postgres',
  description:
    'GitHub events (replayed from the bundled GH Archive data, or live) through the typed transforms into PostgreSQL: one table per event type (or one with a type column), upserted by event id.',
  configSchema: githubToPostgresConfigSchema,
  create: (config) => githubToPostgresBuilder(config),
});
