import { defineMessageType, defineTransform, z } from '@codefeedr/core';
import { GitHubEventType, gitHubEventMessageTypes, type PushEvent } from '@codefeedr/plugin-github';

/** What the summary counts: every event (by type), and every typed push (with its commits). */
export const ActivityType = defineMessageType(
  'github.Activity',
  1,
  z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('event'),
      type: z.string(),
      repo: z.string(),
      createdAt: z.string(),
    }),
    z.object({
      kind: z.literal('push'),
      repo: z.string(),
      commits: z.number().int().nonnegative(),
    }),
  ]),
);

export type Activity = z.output<typeof ActivityType.schema>;

/**
 * Commits in a push: `payload.size` (GitHub's count; the `commits` list stops at 20). The
 * 2025 events API dropped `size`, so the list's length is the fallback there.
 */
export function commitsOf(push: PushEvent): number {
  return push.payload.size ?? push.payload.commits?.length ?? 0;
}

/** Joins the raw events and the typed PushEvents into one activity stream for the summary. */
export const activityTransform = defineTransform({
  name: 'activity',
  description:
    'Turns GitHub events and typed PushEvents into the activity records the summary counts.',
  configSchema: z.object({}).strict(),
  inputTypes: [GitHubEventType, gitHubEventMessageTypes.PushEvent] as const,
  outputType: ActivityType,
  transform: ([events, pushes]) =>
    events
      .map((e): Activity => ({
        kind: 'event',
        type: e.type,
        repo: e.repo.name,
        createdAt: e.created_at,
      }))
      .union(
        pushes.map((p): Activity => ({ kind: 'push', repo: p.repo.name, commits: commitsOf(p) })),
      ),
});
