import { PipelineBuilder, definePipeline, parseConfig, z, type Pipeline } from '@codefeedr/core';
import { issueCommentEvents, issuesEvents } from '@codefeedr/plugin-github';
import { gitHubEventInput, gitHubEventSourceShape } from './github-event-routes.js';
import {
  IssueResponseTimeType,
  issueResponseTimeShape,
  issueResponseTimeTransform,
} from './issue-response-time-stats.js';
import { windowedOutput, windowedOutputShape } from './windowed-output.js';

export const issueResponseTimeConfigSchema = z
  .object({ ...gitHubEventSourceShape, ...issueResponseTimeShape, ...windowedOutputShape })
  .strict();

export type IssueResponseTimeOptions = z.input<typeof issueResponseTimeConfigSchema>;

/**
 * The pipeline's stages, unbuilt, for callers that add a buffer or stage options:
 *
 *   events ──┬─▶ issues-events ────────┬─▶ response-times ──▶ output
 *            └─▶ issue-comment-events ─┘
 */
export function issueResponseTimeBuilder(options: IssueResponseTimeOptions = {}): PipelineBuilder {
  const config = parseConfig('issue-response-time', issueResponseTimeConfigSchema, options);
  const events = gitHubEventInput(config);
  const issues = issuesEvents.create('issues-events');
  const comments = issueCommentEvents.create('issue-comment-events');
  const responseTimes = issueResponseTimeTransform.create('response-times', {
    windowMs: config.windowMs,
    responseWithinMs: config.responseWithinMs,
    outOfOrdernessMs: config.outOfOrdernessMs,
  });
  const output = windowedOutput('output', 'issue-response-time', IssueResponseTimeType, config);
  return new PipelineBuilder('issue-response-time')
    .add(events)
    .edge(events, issues)
    .edge(events, comments)
    .edge(issues, responseTimes)
    .edge(comments, responseTimes)
    .edge(responseTimes, output);
}

export function issueResponseTimePipeline(options: IssueResponseTimeOptions = {}): Pipeline {
  return issueResponseTimeBuilder(options).build();
}

/** `@codefeedr/pipelines-github:issue-response-time` — `npx codefeedr run issue-response-time`. */
export const issueResponseTime = definePipeline({
  name: 'issue-response-time',
  description:
    'Per repository and hour of opening: issues opened, answered within 24 h by a first comment from someone other than the author, unanswered, and the p50/p90 response delay (event-time interval join of IssuesEvent and IssueCommentEvent), to the console, NDJSON, PostgreSQL or MongoDB.',
  configSchema: issueResponseTimeConfigSchema,
  create: (config) => issueResponseTimeBuilder(config),
});
