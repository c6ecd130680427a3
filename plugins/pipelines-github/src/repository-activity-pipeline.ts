import { PipelineBuilder, definePipeline, parseConfig, z, type Pipeline } from '@codefeedr/core';
import { issuesEvents, pullRequestEvents, pushEvents } from '@codefeedr/plugin-github';
import { gitHubEventInput, gitHubEventSourceShape } from './github-event-routes.js';
import {
  RepositoryActivityType,
  activityWindowShape,
  repositoryActivityTransform,
} from './repository-activity-counts.js';
import { windowedOutput, windowedOutputShape } from './windowed-output.js';

export const repositoryActivityConfigSchema = z
  .object({ ...gitHubEventSourceShape, ...activityWindowShape, ...windowedOutputShape })
  .strict();

export type RepositoryActivityOptions = z.input<typeof repositoryActivityConfigSchema>;

/**
 * The pipeline's stages, unbuilt, for callers that add a buffer or stage options:
 *
 *   events ──┬─▶ push-events ─────────┬─▶ activity ──▶ output
 *            ├─▶ issues-events ───────┤
 *            └─▶ pull-request-events ─┘
 */
export function repositoryActivityBuilder(
  options: RepositoryActivityOptions = {},
): PipelineBuilder {
  const config = parseConfig('repository-activity', repositoryActivityConfigSchema, options);
  const events = gitHubEventInput(config);
  const typed = [
    pushEvents.create('push-events'),
    issuesEvents.create('issues-events'),
    pullRequestEvents.create('pull-request-events'),
  ] as const;
  const activity = repositoryActivityTransform.create('activity', {
    windowMs: config.windowMs,
    outOfOrdernessMs: config.outOfOrdernessMs,
  });
  const output = windowedOutput('output', 'repository-activity', RepositoryActivityType, config);
  const builder = new PipelineBuilder('repository-activity').add(events);
  for (const stage of typed) builder.edge(events, stage);
  for (const stage of typed) builder.edge(stage, activity);
  return builder.edge(activity, output);
}

export function repositoryActivityPipeline(options: RepositoryActivityOptions = {}): Pipeline {
  return repositoryActivityBuilder(options).build();
}

/** `@codefeedr/pipelines-github:repository-activity` — `npx codefeedr run repository-activity`. */
export const repositoryActivity = definePipeline({
  name: 'repository-activity',
  description:
    'Pushes, commits, issues opened and pull requests opened per repository per hour (tumbling event-time windows) over replayed or live GitHub events, to the console, NDJSON, PostgreSQL or MongoDB.',
  configSchema: repositoryActivityConfigSchema,
  create: (config) => repositoryActivityBuilder(config),
});
