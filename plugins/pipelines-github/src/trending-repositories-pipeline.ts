import { PipelineBuilder, definePipeline, parseConfig, z, type Pipeline } from '@codefeedr/core';
import { forkEvents, watchEvents } from '@codefeedr/plugin-github';
import { gitHubEventInput, gitHubEventSourceShape } from './github-event-routes.js';
import {
  TrendingRepositoryType,
  slideProblem,
  slideWithinWindow,
  trendingRepositoriesTransform,
  trendingWindowShape,
} from './trending-repositories-ranking.js';
import { windowedOutput, windowedOutputShape } from './windowed-output.js';

export const trendingRepositoriesConfigSchema = z
  .object({ ...gitHubEventSourceShape, ...trendingWindowShape, ...windowedOutputShape })
  .strict()
  .refine(slideWithinWindow, slideProblem);

export type TrendingRepositoriesOptions = z.input<typeof trendingRepositoriesConfigSchema>;

/**
 * The pipeline's stages, unbuilt, for callers that add a buffer or stage options:
 *
 *   events ──┬─▶ watch-events ──┬─▶ trending ──▶ output
 *            └─▶ fork-events  ──┘
 */
export function trendingRepositoriesBuilder(
  options: TrendingRepositoriesOptions = {},
): PipelineBuilder {
  const config = parseConfig('trending-repositories', trendingRepositoriesConfigSchema, options);
  const events = gitHubEventInput(config);
  const watches = watchEvents.create('watch-events');
  const forks = forkEvents.create('fork-events');
  const trending = trendingRepositoriesTransform.create('trending', {
    windowMs: config.windowMs,
    slideMs: config.slideMs,
    top: config.top,
    outOfOrdernessMs: config.outOfOrdernessMs,
  });
  const output = windowedOutput('output', 'trending-repositories', TrendingRepositoryType, config);
  return new PipelineBuilder('trending-repositories')
    .add(events)
    .edge(events, watches)
    .edge(events, forks)
    .edge(watches, trending)
    .edge(forks, trending)
    .edge(trending, output);
}

export function trendingRepositoriesPipeline(options: TrendingRepositoriesOptions = {}): Pipeline {
  return trendingRepositoriesBuilder(options).build();
}

/** `@codefeedr/pipelines-github:trending-repositories` — `npx codefeedr run trending-repositories`. */
export const trendingRepositories = definePipeline({
  name: 'trending-repositories',
  description:
    'Top N repositories by stars + forks per sliding event-time window (default: top 10 of the last hour, every 5 minutes) over replayed or live GitHub events, to the console, NDJSON, PostgreSQL or MongoDB.',
  configSchema: trendingRepositoriesConfigSchema,
  create: (config) => trendingRepositoriesBuilder(config),
});
