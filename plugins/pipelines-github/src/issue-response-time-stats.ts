import {
  defineMessageType,
  defineTransform,
  outputTag,
  z,
  type DataStream,
  type OutputTag,
} from '@codefeedr/core';
import { gitHubEventMessageTypes } from '@codefeedr/plugin-github';
import { LateEventError } from './errors.js';
import { outOfOrdernessSchema, windowSizeSchema } from './repository-windows.js';

const count = z.number().int().nonnegative();
const delay = z.number().int().nonnegative().nullable();

/** How fast one repository's issues opened in one tumbling window got a first answer. */
export const IssueResponseTimeType = defineMessageType(
  'github.IssueResponseTime',
  1,
  z.object({
    /** `<repo>@<windowStart>`: unique per row, the upsert key of the database outputs. */
    id: z.string(),
    repo: z.string(),
    /** The window of the issues' opened time, `[windowStart, windowEnd)`, as ISO 8601 UTC. */
    windowStart: z.iso.datetime(),
    windowEnd: z.iso.datetime(),
    /** IssuesEvents with action `opened` in the window: `answered + unanswered`. */
    issuesOpened: count,
    /** Issues whose first comment by someone other than their author came within `responseWithinMs`. */
    answered: count,
    /** Issues with no such comment within `responseWithinMs` (or before the input ended). */
    unanswered: count,
    /** Median delay from opening to that first comment, ms (nearest rank); null when none answered. */
    p50ResponseMs: delay,
    /** 90th percentile of those delays, ms (nearest rank); null when none answered. */
    p90ResponseMs: delay,
  }),
);

export type IssueResponseTime = z.output<typeof IssueResponseTimeType.schema>;

export const DEFAULT_RESPONSE_WITHIN_MS = 86_400_000;

export const issueResponseTimeShape = {
  windowMs: windowSizeSchema(
    "Size of the tumbling windows of the issues' opened time (default 1 h, aligned to the hour).",
  ),
  responseWithinMs: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .default(DEFAULT_RESPONSE_WITHIN_MS)
    .describe(
      'How long after opening a first comment by someone other than the author still counts as the answer (default 24 h); later, the issue is unanswered. Also how long each issue and comment is kept in state.',
    ),
  outOfOrdernessMs: outOfOrdernessSchema,
};

/** An opened issue or a comment on one, as the join sees it. */
interface IssueSide {
  /** `<repo>#<issue number>`: what the two sides join on. */
  issue: string;
  repo: string;
  author: string;
  /** Event time (created_at), ms. */
  at: number;
}

/** An opened issue, or (delayMs set) a qualifying comment joined with it. */
interface IssueFinding {
  issue: string;
  repo: string;
  openedAt: number;
  delayMs: number | null;
}

/** What the per-issue state holds until the bound passes. */
interface PendingIssue {
  repo: string;
  opened: boolean;
  firstDelayMs: number | null;
}

/** One finished issue: its repository and first response delay (null: unanswered). */
interface IssueOutcome {
  repo: string;
  delayMs: number | null;
}

interface WindowTotals {
  repo: string;
  delays: number[];
  unanswered: number;
}

/** Nearest-rank percentile of sorted values: the smallest with at least `q` of them at or below it. */
function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

function lateEvents(
  stream: DataStream<IssueSide>,
  stageId: string,
  outOfOrdernessMs: number,
): DataStream<IssueResponseTime> {
  return stream.process<IssueResponseTime>({
    processElement(side, ctx) {
      throw new LateEventError(stageId, side, ctx.currentWatermark, outOfOrdernessMs);
    },
  });
}

/**
 * `@codefeedr/pipelines-github:issue-response-time-stats` — opened issues (IssuesEvent, action
 * `opened`) interval-joined on event time with the comments on them (IssueCommentEvent, action
 * `created`, same repository and issue number) made 0..`responseWithinMs` after the opening by
 * someone other than the issue's author. Per issue only the earliest such comment counts (the
 * smallest delay, kept in keyed state until the bound has passed); per repository and tumbling
 * window of the opened time: issues opened, answered, unanswered, and the p50/p90 of the
 * delays. A window is emitted once the watermark is `responseWithinMs` past its end (every
 * issue in it has had its full time to be answered), or at the end of the input. Issues and
 * comments behind the watermark are dead-lettered (LateEventError), never silently left out.
 */
export const issueResponseTimeTransform = defineTransform({
  name: 'issue-response-time-stats',
  description:
    'Per repository and tumbling window of opened time (default 1 h): issues opened, answered within a bound (default 24 h) by a first comment from someone other than the author, unanswered, and the p50/p90 response delay (event-time interval join).',
  configSchema: z.object(issueResponseTimeShape).strict(),
  inputTypes: [
    gitHubEventMessageTypes.IssuesEvent,
    gitHubEventMessageTypes.IssueCommentEvent,
  ] as const,
  outputType: IssueResponseTimeType,
  transform: ([issues, comments], config, ctx) => {
    const within = config.responseWithinMs;
    const watermarks = {
      timestampAssigner: (v: IssueSide) => v.at,
      maxOutOfOrdernessMs: config.outOfOrdernessMs,
    };
    const opened = issues
      .filter((e) => e.payload.action === 'opened')
      .map((e): IssueSide => ({
        issue: `${e.repo.name}#${e.payload.issue.number}`,
        repo: e.repo.name,
        author: e.payload.issue.user?.login ?? e.actor.login,
        at: Date.parse(e.created_at),
      }))
      .assignTimestampsAndWatermarks(watermarks);
    const replies = comments
      .filter((e) => e.payload.action === 'created')
      .map((e): IssueSide => ({
        issue: `${e.repo.name}#${e.payload.issue.number}`,
        repo: e.repo.name,
        author: e.actor.login,
        at: Date.parse(e.created_at),
      }))
      .assignTimestampsAndWatermarks(watermarks);

    const lateIssues: OutputTag<IssueSide> = outputTag('late-issues');
    const lateComments: OutputTag<IssueSide> = outputTag('late-comments');
    const responses = opened
      .keyBy((i) => i.issue)
      .intervalJoin(replies.keyBy((c) => c.issue))
      .between(0, within)
      .sideOutputLeftLateData(lateIssues)
      .sideOutputRightLateData(lateComments)
      .process<IssueFinding>({
        processElement(issue, comment, _ctx, out) {
          if (comment.author === issue.author) return; // the author's own follow-up
          out.collect({
            issue: issue.issue,
            repo: issue.repo,
            openedAt: issue.at,
            delayMs: comment.at - issue.at,
          });
        },
      });

    // Per opened issue (its opened time too: an issue number opened twice is two issues), the
    // smallest delay, final once the watermark passes openedAt + within. The timer sits 1 ms
    // later, so a comment exactly `within` after the opening (emitted before the watermark
    // passes it) is always in.
    const outcomes = responses
      .union(
        opened.map((i): IssueFinding => ({
          issue: i.issue,
          repo: i.repo,
          openedAt: i.at,
          delayMs: null,
        })),
      )
      .keyBy((f) => `${f.issue}@${f.openedAt}`)
      .process<IssueOutcome>({
        processElement(finding, issueCtx) {
          const state = issueCtx.state<PendingIssue>('issue');
          const pending = state.value() ?? {
            repo: finding.repo,
            opened: false,
            firstDelayMs: null,
          };
          const next: PendingIssue = { ...pending };
          if (finding.delayMs === null) next.opened = true;
          else if (pending.firstDelayMs === null || finding.delayMs < pending.firstDelayMs)
            next.firstDelayMs = finding.delayMs;
          state.update(next);
          issueCtx.timerService.registerEventTimeTimer(finding.openedAt + within + 1);
        },
        onTimer(_time, timerCtx, out) {
          const state = timerCtx.state<PendingIssue>('issue');
          const pending = state.value();
          state.clear();
          if (pending?.opened) out.collect({ repo: pending.repo, delayMs: pending.firstDelayMs });
        },
      });

    // Outcomes carry openedAt + within + 1 as their time, so windows shifted by that much
    // (offsetMs) hold exactly the issues opened in [start, end) and close once each had its
    // full time: the watermark passes end + within.
    const shift = within + 1;
    const rows = outcomes
      .keyBy((o) => o.repo)
      .window({ type: 'tumbling', sizeMs: config.windowMs, offsetMs: shift % config.windowMs })
      .aggregate<WindowTotals | null, WindowTotals>({
        createAccumulator: () => null,
        add: (o, totals) => {
          const next = totals ?? { repo: o.repo, delays: [], unanswered: 0 };
          if (o.delayMs === null) next.unanswered++;
          else next.delays.push(o.delayMs);
          return next;
        },
        getResult: (totals) => totals!,
      })
      .map((totals, record): IssueResponseTime => {
        const end = record.timestamp + 1 - shift;
        const windowStart = new Date(end - config.windowMs).toISOString();
        const delays = [...totals.delays].sort((a, b) => a - b);
        return {
          id: `${totals.repo}@${windowStart}`,
          repo: totals.repo,
          windowStart,
          windowEnd: new Date(end).toISOString(),
          issuesOpened: delays.length + totals.unanswered,
          answered: delays.length,
          unanswered: totals.unanswered,
          p50ResponseMs: percentile(delays, 0.5),
          p90ResponseMs: percentile(delays, 0.9),
        };
      });

    return rows
      .union(
        lateEvents(responses.getSideOutput(lateIssues), ctx.stageId, config.outOfOrdernessMs),
        lateEvents(responses.getSideOutput(lateComments), ctx.stageId, config.outOfOrdernessMs),
      )
      .keyBy((r) => r.id)
      .process<IssueResponseTime>({ processElement: (r, _ctx, out) => out.collect(r) });
  },
});
