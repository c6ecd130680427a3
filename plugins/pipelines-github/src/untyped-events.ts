import { defineTransform, z } from '@codefeedr/core';
import { GitHubEventType, gitHubEventTypeNames } from '@codefeedr/plugin-github';

const TYPED = new Set<string>(gitHubEventTypeNames);

/**
 * `@codefeedr/pipelines-github:untyped-events` — the events whose type has no typed transform
 * (GistEvent, FollowEvent, DownloadEvent, TeamAddEvent, … of older GH Archive hours), kept as
 * `github.Event@1`. Beside the typed transforms it makes a store of "every event" truly every
 * event: a type GitHub adds tomorrow lands here instead of being dropped.
 */
export const untypedEvents = defineTransform({
  name: 'untyped-events',
  description:
    'Keeps the GitHub events of types that have no typed transform (GistEvent, FollowEvent, …), unchanged, as github.Event@1.',
  configSchema: z.object({}).strict(),
  inputTypes: [GitHubEventType] as const,
  outputType: GitHubEventType,
  transform: ([events]) => events.filter((event) => !TYPED.has(event.type)),
});
