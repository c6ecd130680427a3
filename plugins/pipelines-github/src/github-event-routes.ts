import type { PipelineBuilder } from '@codefeedr/core';
import {
  z,
  type InputStage,
  type MessageType,
  type Source,
  type TransformStage,
} from '@codefeedr/core';
import {
  GitHubEventType,
  eventTransformName,
  eventTransforms,
  eventsInput,
  gitHubEventMessageTypes,
  gitHubEventTypeNames,
  replayInput,
  type GitHubEvent,
} from '@codefeedr/plugin-github';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';
import { untypedEvents } from './untyped-events.js';

/** The events source settings the database pipelines share (the summary's, without output). */
export const gitHubEventSourceShape = {
  live: z
    .boolean()
    .default(false)
    .describe(
      "Poll GitHub's public events feed instead of replaying files (token: `token` or GITHUB_TOKEN).",
    ),
  token: z
    .string()
    .min(1)
    .optional()
    .describe('GitHub token for live mode (default: GITHUB_TOKEN); never logged.'),
  baseUrl: z.url().optional().describe('GitHub API base URL for live mode (GitHub Enterprise).'),
  paths: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .optional()
    .describe(
      'GH Archive hours or NDJSON files/folders to replay; default: the 10,557 bundled events.',
    ),
  speed: z
    .number()
    .positive()
    .optional()
    .describe(
      'Replay paced by event time (60 = an hour per minute); default: as fast as possible.',
    ),
};

/** One table per event type, or one table for all of them (told apart by its `type` column). */
export const storeLayoutSchema = z
  .enum(['per-type', 'single'])
  .default('per-type')
  .describe(
    'per-type: one table/collection per event type (<prefix>push_events, …, <prefix>other_events); single: all in <prefix>events, with the `type` column/field.',
  );

export type StoreLayout = z.output<typeof storeLayoutSchema>;

/** Table and collection prefixes: a plain identifier, so every derived name is one too. */
export const storePrefixSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,29}$/, 'letters, digits and _ (not first), at most 30')
  .default('github_')
  .describe('Prefix of every table/collection name (github_ → github_push_events).');

export interface GitHubEventSourceConfig {
  live: boolean;
  token?: string | undefined;
  baseUrl?: string | undefined;
  paths?: string | string[] | undefined;
  speed?: number | undefined;
}

/** One stream of the store: a transform over the events and the table/collection it fills. */
export interface GitHubEventRoute {
  /** The transform's stage id: `push-events`, …, `other-events`. */
  readonly stageId: string;
  /** `push_events`, …, `other_events`: the table/collection name without its prefix. */
  readonly store: string;
  readonly messageType: MessageType<GitHubEvent>;
  readonly stage: TransformStage<readonly [GitHubEvent], GitHubEvent>;
}

/**
 * The input stage: a replay of files (default: the bundled events) or the live feed, each
 * event keyed by its repository (what per-repository windows downstream partition by).
 */
export function gitHubEventInput(config: GitHubEventSourceConfig): InputStage<GitHubEvent> {
  if (config.live) {
    const token = config.token ?? process.env.GITHUB_TOKEN;
    return eventsInput.create('events', {
      tokens: token ? [token] : [],
      ...(config.baseUrl ? { baseUrl: config.baseUrl } : {}),
    });
  }
  return replayInput.create('events', {
    paths: config.paths ?? BUNDLED_EVENTS,
    ...(config.speed ? { speed: config.speed } : {}),
  });
}

/** The input stage of the stores: gitHubEventInput with every event keyed by its id (see keyedByEventId). */
export function gitHubEventSource(config: GitHubEventSourceConfig): InputStage<GitHubEvent> {
  return keyedByEventId(gitHubEventInput(config));
}

/**
 * The GitHub inputs key events by repository (for per-repo state downstream); a store of
 * events wants the event id, which is what an upsert goes by. With the id as the record key
 * the MongoDB output upserts by `_id` — the one field FerretDB's SQLite backend finds by index
 * (a `keyField: id` filter scans the collection per write: measured 80 vs 430 documents/s).
 * Records a source could not parse (strings or bytes with an error header) pass unchanged.
 */
export function keyedByEventId(stage: InputStage<GitHubEvent>): InputStage<GitHubEvent> {
  return {
    ...stage,
    async createSource(ctx) {
      const source = await stage.createSource(ctx);
      const rekeyed: Source<GitHubEvent> = {
        async poll(maxRecords, signal) {
          const batch = await source.poll(maxRecords, signal);
          if (batch === null) return null;
          for (let i = 0; i < batch.length; i++) {
            const record = batch[i]!;
            const id = (record.value as Partial<GitHubEvent> | null)?.id;
            if (typeof id === 'string' && record.key !== id) batch[i] = { ...record, key: id };
          }
          return batch;
        },
        position: () => source.position(),
        restore: (position) => source.restore(position),
        close: () => source.close(),
      };
      if (source.commit) rekeyed.commit = (position) => source.commit!(position);
      return rekeyed;
    },
  };
}

/**
 * Adds the events input, one typed transform per event type and the untyped rest to
 * `builder`, and returns the routes for the caller to attach an output to each. Every event
 * is in exactly one route (its type's, or `other-events`), so per-type stores add up to the
 * input.
 */
export function addGitHubEventRoutes(
  builder: PipelineBuilder,
  config: GitHubEventSourceConfig,
): GitHubEventRoute[] {
  const events = gitHubEventSource(config);
  builder.add(events);
  const routes: GitHubEventRoute[] = gitHubEventTypeNames.map((type) => {
    const stageId = eventTransformName(type);
    return {
      stageId,
      store: stageId.replaceAll('-', '_'),
      messageType: gitHubEventMessageTypes[type] as MessageType<GitHubEvent>,
      stage: eventTransforms[type].create(stageId) as TransformStage<
        readonly [GitHubEvent],
        GitHubEvent
      >,
    };
  });
  routes.push({
    stageId: 'other-events',
    store: 'other_events',
    messageType: GitHubEventType,
    stage: untypedEvents.create('other-events'),
  });
  for (const route of routes) builder.edge(events, route.stage);
  return routes;
}

/** The table/collection name of a route under `layout`. */
export function storeNameOf(route: GitHubEventRoute, prefix: string, layout: StoreLayout): string {
  return layout === 'single' ? `${prefix}events` : `${prefix}${route.store}`;
}
