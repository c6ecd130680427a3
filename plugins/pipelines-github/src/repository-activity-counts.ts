import { defineMessageType, defineTransform, z } from '@codefeedr/core';
import { gitHubEventMessageTypes, type PushEvent } from '@codefeedr/plugin-github';
import { commitsOf } from './activity.js';
import {
  outOfOrdernessSchema,
  perRepositoryWindows,
  windowSizeSchema,
  type RepositoryContribution,
} from './repository-windows.js';

const count = z.number().int().nonnegative();

/** What one repository did in one tumbling window. */
export const RepositoryActivityType = defineMessageType(
  'github.RepositoryActivity',
  1,
  z.object({
    /** `<repo>@<windowStart>`: unique per row, the upsert key of the database outputs. */
    id: z.string(),
    repo: z.string(),
    /** The window, `[windowStart, windowEnd)`, as ISO 8601 UTC. */
    windowStart: z.iso.datetime(),
    windowEnd: z.iso.datetime(),
    /** PushEvents. */
    pushes: count,
    /** Commits those pushes carried: `payload.size`, else the length of `payload.commits`. */
    commits: count,
    /** Pushes with neither `size` nor `commits` (GitHub's events API since 2025): not in `commits`. */
    pushesWithoutCommitCount: count,
    /** IssuesEvents with action `opened` (reopened ones are not counted). */
    issuesOpened: count,
    /** PullRequestEvents with action `opened`. */
    pullRequestsOpened: count,
  }),
);

export type RepositoryActivity = z.output<typeof RepositoryActivityType.schema>;

export const activityWindowShape = {
  windowMs: windowSizeSchema(
    'Size of the tumbling event-time windows (default 1 h, aligned to the hour).',
  ),
  outOfOrdernessMs: outOfOrdernessSchema,
};

/** One event's contribution to its repository's window. */
interface Contribution extends RepositoryContribution {
  pushes: number;
  commits: number;
  pushesWithoutCommitCount: number;
  issuesOpened: number;
  pullRequestsOpened: number;
}

type Counts = Omit<Contribution, 'repo' | 'at'>;

function contribution(repo: string, createdAt: string, counts: Partial<Counts>): Contribution {
  return {
    repo,
    at: Date.parse(createdAt),
    pushes: 0,
    commits: 0,
    pushesWithoutCommitCount: 0,
    issuesOpened: 0,
    pullRequestsOpened: 0,
    ...counts,
  };
}

function pushContribution(push: PushEvent): Contribution {
  const counted = push.payload.size !== undefined || push.payload.commits !== undefined;
  return contribution(push.repo.name, push.created_at, {
    pushes: 1,
    commits: commitsOf(push),
    pushesWithoutCommitCount: counted ? 0 : 1,
  });
}

/**
 * `@codefeedr/pipelines-github:repository-activity-counts` — per repository and tumbling
 * event-time window (default hourly): pushes, commits, issues opened, pull requests opened.
 * Incremental (one accumulator per repository and window); a window is emitted once the
 * watermark passes its end, and only if something in it was counted. Late events (behind the
 * watermark's bound) are dead-lettered (LateEventError), never silently uncounted.
 */
export const repositoryActivityTransform = defineTransform({
  name: 'repository-activity-counts',
  description:
    'Pushes, commits, issues opened and pull requests opened per repository per tumbling event-time window (default hourly).',
  configSchema: z.object(activityWindowShape).strict(),
  inputTypes: [
    gitHubEventMessageTypes.PushEvent,
    gitHubEventMessageTypes.IssuesEvent,
    gitHubEventMessageTypes.PullRequestEvent,
  ] as const,
  outputType: RepositoryActivityType,
  transform: ([pushes, issues, pulls], config, ctx) =>
    perRepositoryWindows(
      pushes.map(pushContribution).union(
        issues
          .filter((e) => e.payload.action === 'opened')
          .map((e) => contribution(e.repo.name, e.created_at, { issuesOpened: 1 })),
        pulls
          .filter((e) => e.payload.action === 'opened')
          .map((e) => contribution(e.repo.name, e.created_at, { pullRequestsOpened: 1 })),
      ),
      {
        window: { type: 'tumbling', sizeMs: config.windowMs },
        outOfOrdernessMs: config.outOfOrdernessMs,
        stageId: ctx.stageId,
        add: (total, v) => {
          total.pushes += v.pushes;
          total.commits += v.commits;
          total.pushesWithoutCommitCount += v.pushesWithoutCommitCount;
          total.issuesOpened += v.issuesOpened;
          total.pullRequestsOpened += v.pullRequestsOpened;
        },
        results: (totals) =>
          // A window's totals carry its end − 1 as their time.
          totals.map((c, record): RepositoryActivity => {
            const end = record.timestamp + 1;
            const windowStart = new Date(end - config.windowMs).toISOString();
            return {
              id: `${c.repo}@${windowStart}`,
              repo: c.repo,
              windowStart,
              windowEnd: new Date(end).toISOString(),
              pushes: c.pushes,
              commits: c.commits,
              pushesWithoutCommitCount: c.pushesWithoutCommitCount,
              issuesOpened: c.issuesOpened,
              pullRequestsOpened: c.pullRequestsOpened,
            };
          }),
      },
    ),
});
