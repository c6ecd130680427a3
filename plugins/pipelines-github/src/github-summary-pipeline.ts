import { fileURLToPath } from 'node:url';
import {
  PipelineBuilder,
  definePipeline,
  ndjsonFileOutput,
  parseConfig,
  z,
  type Pipeline,
} from '@codefeedr/core';
import {
  eventTransforms,
  eventsInput,
  forkEvents,
  replayInput,
  watchEvents,
} from '@codefeedr/plugin-github';
import { activityTransform } from './activity.js';
import { eventWindowsTransform } from './event-windows.js';
import { GitHubSummary } from './github-summary.js';
import { summaryOutput } from './summary-output.js';
import { trendingRepositoriesTransform } from './trending-repositories-ranking.js';

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

/**
 * GitHub events (replayed from the bundled GH Archive data, or live) → typed PushEvents →
 * activity → a printed running summary, with event time at work beside it: events per
 * tumbling 10-minute and 1-hour window, and the trending repositories (stars + forks per
 * sliding hour, every 5 minutes); every event also goes to an NDJSON file.
 *
 *   events ──┬──────────────▶ activity ──────▶ summary
 *            ├─▶ push-events ─┘                ▲ ▲
 *            ├─▶ event-windows ────────────────┘ │
 *            ├─▶ watch-events ─┬─▶ trending ─────┘
 *            ├─▶ fork-events ──┘
 *            └─▶ ndjson
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
  const watches = watchEvents.create('watch-events');
  const forks = forkEvents.create('fork-events');
  const trending = trendingRepositoriesTransform.create('trending', { top: config.top });
  const summary = summaryOutput.create('summary', {
    top: config.top,
    source,
    ...(config.out ? { out: config.out } : {}),
    ...(config.tty !== undefined ? { tty: config.tty } : {}),
    ...(config.summary ? { summary: config.summary } : {}),
    plainEveryMs: config.live ? 30_000 : 0,
  });
  const ndjson = ndjsonFileOutput.create('ndjson', { path: config.output, mode: 'truncate' });
  return new PipelineBuilder('github-summary')
    .add(events)
    .edge(events, pushes)
    .edge(events, activity)
    .edge(pushes, activity)
    .edge(events, windows)
    .edge(events, watches)
    .edge(events, forks)
    .edge(watches, trending)
    .edge(forks, trending)
    .edge(activity, summary)
    .edge(windows, summary)
    .edge(trending, summary)
    .edge(events, ndjson)
    .build();
}

/** `@codefeedr/pipelines-github:github-summary` — the prebuilt pipeline as a registry component. */
export const pipeline = definePipeline({
  name: 'github-summary',
  description:
    'Replays real GitHub events (or polls them live) through the typed transforms and prints events per type, the top repositories by pushes and commits, the busiest event-time windows and the trending repositories.',
  configSchema: githubSummaryConfigSchema,
  create: (config) => githubSummaryPipeline(config),
});
