import { fileURLToPath } from 'node:url';
import {
  PipelineBuilder,
  definePipeline,
  ndjsonFileOutput,
  parseConfig,
  z,
  type JsonValue,
  type Pipeline,
} from '@codefeedr/core';
import { eventTransforms, eventsInput, replayInput } from '@codefeedr/plugin-github';
import { activityTransform } from './activity.js';
import { eventWindowsTransform } from './event-windows.js';
import { GitHubSummary } from './github-summary.js';
import { summaryOutput } from './summary-output.js';
import { activityTrendingTransform } from './trending-repositories-ranking.js';

/** The real GH Archive events shipped in this package's `data` folder. */
export const BUNDLED_EVENTS = fileURLToPath(new URL('../data/events.ndjson.gz', import.meta.url));

export const githubSummaryConfigSchema = z
  .object({
    /** Poll GitHub's public events feed instead of replaying files (needs `token` for 5,000 requests/hour). */
    live: z.boolean().default(false),
    /** GitHub token for live mode (secret: never printed). */
    token: z.string().min(1).optional(),
    /** GitHub API base URL for live mode (GitHub Enterprise, or a test double). */
    baseUrl: z.url().optional(),
    /** Files or folders to replay (GH Archive hours, NDJSON); default: the bundled events. */
    paths: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** Replay paced by event time (60 = an hour per minute); default: as fast as possible. */
    speed: z.number().positive().optional(),
    /** Every event is also written here as NDJSON. */
    output: z.string().min(1).default('github-events.ndjson'),
    top: z.number().int().min(1).max(100).default(10),
    /** Where the summary is printed (default stdout) and whether it is a terminal. */
    out: z
      .custom<NodeJS.WritableStream>(
        (v) => typeof (v as NodeJS.WritableStream)?.write === 'function',
      )
      .optional(),
    tty: z.boolean().optional(),
    /** Filled with the figures as the pipeline runs. */
    summary: z.instanceof(GitHubSummary).optional(),
  })
  .strict();

export type GitHubSummaryOptions = z.input<typeof githubSummaryConfigSchema>;

/** The stages that run once per split in a split run (`run({ splits })`): the per-event work. */
export const GITHUB_SUMMARY_PARALLEL_STAGES = ['events', 'push-events', 'activity', 'ndjson'];

/**
 * GitHub events (replayed from the bundled GH Archive data, or live) → typed PushEvents →
 * activity → a printed running summary, with event time at work beside it: events per
 * tumbling 10-minute and 1-hour window, and the trending repositories (stars + forks per
 * sliding hour, every 5 minutes); every event also goes to an NDJSON file.
 *
 *   events ──┬─▶ push-events ─▶ activity ──┬──────────────────▶ summary
 *            ├───────────────▶ activity    ├─▶ event-windows ──▶ summary
 *            └─▶ ndjson                    └─▶ trending ───────▶ summary
 *
 * The windows and the ranking read the activity records (type, repository, time), not the
 * events, so a replay can run in splits (`pipeline.run({ splits: 2 })`, `--splits 2`): the
 * events, the typed check, the activity records and the NDJSON file (one per split) are the
 * per-event work, done once per split in a worker thread of its own; the windows, the ranking
 * and the summary run in the main thread, on event time merged over the splits.
 */
export function githubSummaryPipeline(options: GitHubSummaryOptions = {}): Pipeline {
  // Every problem at once, as a ConfigError with a stable code.
  const config = parseConfig('github-summary', githubSummaryConfigSchema, options);
  const paths = config.paths ?? BUNDLED_EVENTS;
  const events = config.live
    ? eventsInput.create('events', {
        tokens: config.token ? [config.token] : [],
        ...(config.baseUrl ? { baseUrl: config.baseUrl } : {}),
      })
    : replayInput.create('events', { paths, ...(config.speed ? { speed: config.speed } : {}) });
  const source = config.live
    ? 'live GitHub events'
    : `replay of ${typeof paths === 'string' ? paths.split('/').pop() : `${paths.length} files`}`;
  const pushes = eventTransforms.PushEvent.create('push-events');
  const activity = activityTransform.create('activity');
  const windows = eventWindowsTransform.create('event-windows');
  const trending = activityTrendingTransform.create('trending', { top: config.top });
  const summary = summaryOutput.create('summary', {
    top: config.top,
    source,
    ...(config.out ? { out: config.out } : {}),
    ...(config.tty !== undefined ? { tty: config.tty } : {}),
    ...(config.summary ? { summary: config.summary } : {}),
    plainEveryMs: config.live ? 30_000 : 0,
  });
  const ndjson = ndjsonFileOutput.create('ndjson', { path: config.output, mode: 'truncate' });
  const builder = new PipelineBuilder('github-summary')
    // A split run's threads build the pipeline again from the JSON part of the options, with
    // this package as installed (a thread cannot load the TypeScript sources tests run from),
    // from the entry that loads no database driver.
    .setFactory({
      module: '@codefeedr/pipelines-github/summary',
      export: 'githubSummaryPipeline',
      config: factoryConfig(options),
    })
    .add(events)
    .edge(events, pushes)
    .edge(events, activity)
    .edge(pushes, activity)
    .edge(activity, windows)
    .edge(activity, trending)
    .edge(activity, summary)
    .edge(windows, summary)
    .edge(trending, summary)
    .edge(events, ndjson);
  for (const id of GITHUB_SUMMARY_PARALLEL_STAGES) builder.setStageOptions(id, { parallel: true });
  return builder.build();
}

/** The options that describe the pipeline (not where its summary goes): JSON, for a thread. */
function factoryConfig(options: GitHubSummaryOptions): JsonValue {
  const { out: _out, tty: _tty, summary: _summary, ...rest } = options;
  return JSON.parse(JSON.stringify(rest)) as JsonValue;
}

/** `@codefeedr/pipelines-github:github-summary` — the prebuilt pipeline as a registry component. */
export const pipeline = definePipeline({
  name: 'github-summary',
  description:
    'Replays real GitHub events (or polls them live) through the typed transforms and prints events per type, the top repositories by pushes and commits, the busiest event-time windows and the trending repositories.',
  configSchema: githubSummaryConfigSchema,
  create: (config) => githubSummaryPipeline(config),
});
