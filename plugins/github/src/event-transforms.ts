import { defineTransform, z } from '@codefeedr/core';
import type { TransformComponent } from '@codefeedr/core';
import {
  GitHubEventType,
  gitHubEventMessageTypes,
  gitHubEventTypeNames,
  type GitHubEvent,
  type GitHubEventTypeName,
  type TypedGitHubEvent,
} from './event-types.js';

/** Component name of the transform for an event type: `PushEvent` → `push-events`. */
export function eventTransformName(type: GitHubEventTypeName): string {
  const words = type.replace(/Event$/, '').replace(/([a-z])([A-Z])/g, '$1-$2');
  return `${words.toLowerCase()}-events`;
}

export type EventTransformComponent<N extends GitHubEventTypeName> = TransformComponent<
  z.ZodObject<Record<string, never>>,
  readonly [GitHubEvent],
  TypedGitHubEvent<N>
>;

/**
 * The one generic transform: keep the events of `type` and check each against its message
 * type. A payload that breaks the schema throws SchemaMismatchError inside the map, which
 * the runtime routes to the stage's dead-letter topic; the rest of the batch flows on.
 */
export function defineEventTransform<N extends GitHubEventTypeName>(
  type: N,
): EventTransformComponent<N> {
  const outputType = gitHubEventMessageTypes[type];
  return defineTransform({
    name: eventTransformName(type),
    description: `Keeps the ${type}s of a GitHub events stream, typed and checked as ${outputType.id}.`,
    configSchema: z.object({}).strict(),
    inputTypes: [GitHubEventType] as const,
    outputType,
    transform: ([events]) =>
      events.filter((event) => event.type === type).map((event) => outputType.check(event)),
  });
}

/** One transform component per supported event type, keyed by event type name. */
export const eventTransforms = Object.fromEntries(
  gitHubEventTypeNames.map((type) => [type, defineEventTransform(type)]),
) as { [N in GitHubEventTypeName]: EventTransformComponent<N> };

// Each transform as its own export too, so the registry's manifest lists every component.
export const pushEvents = eventTransforms.PushEvent;
export const issuesEvents = eventTransforms.IssuesEvent;
export const issueCommentEvents = eventTransforms.IssueCommentEvent;
export const pullRequestEvents = eventTransforms.PullRequestEvent;
export const pullRequestReviewEvents = eventTransforms.PullRequestReviewEvent;
export const pullRequestReviewCommentEvents = eventTransforms.PullRequestReviewCommentEvent;
export const watchEvents = eventTransforms.WatchEvent;
export const forkEvents = eventTransforms.ForkEvent;
export const createEvents = eventTransforms.CreateEvent;
export const deleteEvents = eventTransforms.DeleteEvent;
export const releaseEvents = eventTransforms.ReleaseEvent;
export const commitCommentEvents = eventTransforms.CommitCommentEvent;
export const gollumEvents = eventTransforms.GollumEvent;
export const memberEvents = eventTransforms.MemberEvent;
export const publicEvents = eventTransforms.PublicEvent;
