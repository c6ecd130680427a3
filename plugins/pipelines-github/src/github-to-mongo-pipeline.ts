import { PipelineBuilder, definePipeline, parseConfig, z, type Pipeline } from '@codefeedr/core';
import { mongoOutput } from '@codefeedr/plugin-mongodb';
import { DEFAULT_MONGODB_URL } from './database-defaults.js';
import {
  addGitHubEventRoutes,
  gitHubEventSourceShape,
  storeLayoutSchema,
  storeNameOf,
  storePrefixSchema,
} from './github-event-routes.js';

export const githubToMongoConfigSchema = z
  .object({
    ...gitHubEventSourceShape,
    url: z
      .string()
      .min(1)
      .optional()
      .describe(
        `MongoDB connection string; default: MONGODB_URL, else ${DEFAULT_MONGODB_URL}. Its password is never logged.`,
      ),
    database: z
      .string()
      .regex(/^[^/\\. "$*<>:|?]+$/, 'a MongoDB database name (no /\\. "$*<>:|?)')
      .default('codefeedr')
      .describe('Database of the collections.'),
    prefix: storePrefixSchema,
    layout: storeLayoutSchema,
  })
  .strict();

export type GitHubToMongoOptions = z.input<typeof githubToMongoConfigSchema>;

/**
 * The pipeline's stages, unbuilt, for callers that add a buffer or stage options:
 *
 *   events ──┬─▶ push-events ──▶ store-push-events     (<prefix>push_events)
 *            ├─▶ …  one typed transform and collection per event type
 *            └─▶ other-events ──▶ store-other-events   (<prefix>other_events: untyped types)
 *
 * Each event is one document (the event as GitHub sent it, `_id` = its `id`), upserted by
 * `_id`, so a rerun or a replay after a crash writes nothing twice.
 */
export function githubToMongoBuilder(options: GitHubToMongoOptions = {}): PipelineBuilder {
  const config = parseConfig('github-to-mongo', githubToMongoConfigSchema, options);
  const url = config.url ?? process.env.MONGODB_URL ?? DEFAULT_MONGODB_URL;
  const builder = new PipelineBuilder('github-to-mongo');
  for (const route of addGitHubEventRoutes(builder, config)) {
    const store = mongoOutput.create(`store-${route.stageId}`, {
      url,
      database: config.database,
      collection: storeNameOf(route, config.prefix, config.layout),
      // The record key is the event id (keyedByEventId): it becomes the document's _id.
      mode: 'upsert',
    });
    builder.edge(route.stage, store);
  }
  return builder;
}

export function githubToMongoPipeline(options: GitHubToMongoOptions = {}): Pipeline {
  return githubToMongoBuilder(options).build();
}

/** `@codefeedr/pipelines-github:github-to-mongo` — `npx codefeedr run github-to-mongo`. */
export const githubToMongo = definePipeline({
  name: 'github-to-mongo',
  description:
    'GitHub events (replayed from the bundled GH Archive data, or live) through the typed transforms into MongoDB: one collection per event type (or one with a type field), upserted by event id.',
  configSchema: githubToMongoConfigSchema,
  create: (config) => githubToMongoBuilder(config),
});
