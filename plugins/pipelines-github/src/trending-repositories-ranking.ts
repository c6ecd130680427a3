import { defineMessageType, defineTransform, z, type DataStream } from '@codefeedr/core';
import { ActivityType } from './activity.js';
import { gitHubEventMessageTypes } from '@codefeedr/plugin-github';
import {
  outOfOrdernessSchema,
  perRepositoryWindows,
  windowSizeSchema,
  type RepositoryContribution,
} from './repository-windows.js';

/** One repository of one window's top N. */
export const TrendingRepositoryType = defineMessageType(
  'github.TrendingRepository',
  1,
  z.object({
    /** `<windowStart>#<rank>`: unique per row, the upsert key of the database outputs. */
    id: z.string(),
    /** The sliding window, `[windowStart, windowEnd)`, as ISO 8601 UTC. */
    windowStart: z.iso.datetime(),
    windowEnd: z.iso.datetime(),
    rank: z.number().int().positive(),
    repo: z.string(),
    stars: z.number().int().nonnegative(),
    forks: z.number().int().nonnegative(),
  }),
);

export type TrendingRepository = z.output<typeof TrendingRepositoryType.schema>;

/** The window and ranking settings, shared by the transform and the pipeline. */
export const trendingWindowShape = {
  windowMs: windowSizeSchema('Size of the sliding event-time window (default 1 h).'),
  slideMs: z
    .number()
    .int()
    .positive()
    .default(300_000)
    .describe('How far apart windows start (default 5 min); at most windowMs.'),
  top: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(10)
    .describe('Repositories per window, by stars + forks.'),
  outOfOrdernessMs: outOfOrdernessSchema,
};

export function slideWithinWindow(config: { windowMs: number; slideMs: number }): boolean {
  return config.slideMs <= config.windowMs;
}
export const slideProblem = {
  message: 'slideMs must not exceed windowMs (events between windows would not be counted)',
  path: ['slideMs'],
};

export const trendingRepositoriesTransformConfigSchema = z
  .object(trendingWindowShape)
  .strict()
  .refine(slideWithinWindow, slideProblem);

/** A star or a fork of one repository, at its event time. */
interface StarOrFork extends RepositoryContribution {
  stars: number;
  forks: number;
}

interface RepoCounts extends StarOrFork {
  /** Exclusive end of the sliding window the counts are of. */
  windowEnd: number;
}

/** Most stars + forks first, then most stars, then the name in code-point order. */
function byTrend(a: RepoCounts, b: RepoCounts): number {
  return (
    b.stars + b.forks - (a.stars + a.forks) ||
    b.stars - a.stars ||
    (a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0)
  );
}

type TrendingConfig = z.output<typeof trendingRepositoriesTransformConfigSchema>;

/**
 * Per sliding event-time window, the top N repositories of `contributions` by stars + forks.
 * Counts are incremental per repository and window (keyBy repo → sliding window → aggregate).
 * Each window's counts carry its end − 1 as their time, so a tumbling window of one slide,
 * aligned to the window ends, gathers exactly one sliding window's counts; it fires on the same
 * watermark and ranks them. Late contributions (behind the watermark's bound) are dead-lettered
 * (LateEventError), never silently uncounted.
 */
function rankTrending(
  contributions: DataStream<StarOrFork>,
  config: TrendingConfig,
  stageId: string,
): DataStream<TrendingRepository> {
  return perRepositoryWindows(contributions, {
    window: { type: 'sliding', sizeMs: config.windowMs, slideMs: config.slideMs },
    outOfOrdernessMs: config.outOfOrdernessMs,
    stageId,
    add: (total, v) => {
      total.stars += v.stars;
      total.forks += v.forks;
    },
    results: (totals) =>
      totals
        // A window's totals carry its end − 1 as their time.
        .map((c, record): RepoCounts => ({ ...c, windowEnd: record.timestamp + 1 }))
        .keyBy((c) => String(c.windowEnd))
        .window({
          type: 'tumbling',
          sizeMs: config.slideMs,
          offsetMs: config.windowMs % config.slideMs,
        })
        .process<TrendingRepository>((_key, _window, values, out) => {
          const ranked = [...values].sort(byTrend).slice(0, config.top);
          const end = ranked[0]!.windowEnd;
          const windowStart = new Date(end - config.windowMs).toISOString();
          const windowEnd = new Date(end).toISOString();
          ranked.forEach((c, i) =>
            out.collect({
              id: `${windowStart}#${i + 1}`,
              windowStart,
              windowEnd,
              rank: i + 1,
              repo: c.repo,
              stars: c.stars,
              forks: c.forks,
            }),
          );
        }),
  });
}

/**
 * `@codefeedr/pipelines-github:trending-repositories-ranking` — per sliding event-time window,
 * the top N repositories by stars (WatchEvent) plus forks (ForkEvent) (see rankTrending). The
 * ranking needs all of a window's counts in one place: run this stage as one worker.
 */
export const trendingRepositoriesTransform = defineTransform({
  name: 'trending-repositories-ranking',
  description:
    'Top N repositories by stars (WatchEvent) + forks (ForkEvent) per sliding event-time window (default 1 h every 5 min).',
  configSchema: trendingRepositoriesTransformConfigSchema,
  inputTypes: [gitHubEventMessageTypes.WatchEvent, gitHubEventMessageTypes.ForkEvent] as const,
  outputType: TrendingRepositoryType,
  transform: ([watches, forks], config, ctx) =>
    rankTrending(
      watches
        .map((e): StarOrFork => ({
          repo: e.repo.name,
          at: Date.parse(e.created_at),
          stars: 1,
          forks: 0,
        }))
        .union(
          forks.map((e): StarOrFork => ({
            repo: e.repo.name,
            at: Date.parse(e.created_at),
            stars: 0,
            forks: 1,
          })),
        ),
      config,
      ctx.stageId,
    ),
});

/**
 * The same ranking from activity records (WatchEvent and ForkEvent ones): how the main job
 * ranks, since activity records are what its split runs send to the main thread.
 */
export const activityTrendingTransform = defineTransform({
  name: 'activity-trending',
  description:
    "Top N repositories by stars + forks per sliding event-time window, from activity records (the main job's form).",
  configSchema: trendingRepositoriesTransformConfigSchema,
  inputTypes: [ActivityType] as const,
  outputType: TrendingRepositoryType,
  transform: ([activity], config, ctx) =>
    rankTrending(
      activity.flatMap<StarOrFork>((a, out) => {
        if (a.kind !== 'event') return;
        if (a.type === 'WatchEvent')
          out.collect({ repo: a.repo, at: Date.parse(a.createdAt), stars: 1, forks: 0 });
        else if (a.type === 'ForkEvent')
          out.collect({ repo: a.repo, at: Date.parse(a.createdAt), stars: 0, forks: 1 });
      }),
      config,
      ctx.stageId,
    ),
});
