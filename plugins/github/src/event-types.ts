import { defineMessageType, z } from '@codefeedr/core';
import type { MessageType } from '@codefeedr/core';

/**
 * Message types of the GitHub events feed, one module for all of them (table-driven).
 *
 * Schemas are deliberately tolerant: every object is `.loose()` so fields GitHub adds
 * later flow through untouched, and fields that real 2012–2023 events lack (display_login,
 * distinct_size, before, pull_request on old review comments, ...) are optional. What is
 * required is what a consumer cannot do without: ids, names, the action, the object the
 * event is about. An event whose payload breaks that goes to the dead-letter topic.
 */

const user = z.object({ id: z.number(), login: z.string(), url: z.string().optional() }).loose();

const actor = z
  .object({
    id: z.number(),
    login: z.string(),
    // Absent before ~2016 (see test/fixtures/github/README.md, "Schema drift").
    display_login: z.string().optional(),
    gravatar_id: z.string().optional(),
    url: z.string().optional(),
    avatar_url: z.string().optional(),
  })
  .loose();

const repo = z
  .object({
    // A handful of 2012 events (deleted repositories) have no repo id.
    id: z.number().optional(),
    name: z.string(),
    url: z.string().optional(),
  })
  .loose();

const org = z.object({ id: z.number(), login: z.string() }).loose();

/** The envelope every event shares; `payload` is typed per event type below. */
export const gitHubEventSchema = z
  .object({
    id: z.string().regex(/^\d+$/, 'GitHub event ids are digit strings'),
    type: z.string(),
    actor,
    repo,
    org: org.optional(),
    payload: z.record(z.string(), z.unknown()),
    public: z.boolean(),
    created_at: z.iso.datetime({ offset: true }),
  })
  .loose();

export type GitHubEvent = z.output<typeof gitHubEventSchema>;

/** Any event of the feed, untyped payload: what the inputs emit. */
export const GitHubEventType: MessageType<GitHubEvent> = defineMessageType(
  'github.Event',
  1,
  gitHubEventSchema,
);

const commit = z
  .object({
    sha: z.string(),
    message: z.string(),
    author: z.object({ name: z.string().optional(), email: z.string().optional() }).loose(),
    distinct: z.boolean().optional(),
    url: z.string().optional(),
  })
  .loose();

const issue = z
  .object({
    id: z.number(),
    number: z.number(),
    title: z.string(),
    state: z.string(),
    body: z.string().nullable().optional(),
    user: user.optional(),
    url: z.string().optional(),
    html_url: z.string().optional(),
  })
  .loose();

const comment = z
  .object({
    id: z.number(),
    body: z.string().nullable(),
    user: user.optional(),
    url: z.string().optional(),
    html_url: z.string().optional(),
  })
  .loose();

// Since October 2025 the events API sends a minimal pull request on PullRequestEvent and the
// review events (url, id, node_id, number, head, base): state, title, body, user and merged are
// optional so today's live events are not dead-lettered (GH Archive before then has them all).
const pullRequest = z
  .object({
    id: z.number(),
    number: z.number(),
    state: z.string().optional(),
    title: z.string().optional(),
    body: z.string().nullable().optional(),
    user: user.optional(),
    merged: z.boolean().optional(),
    head: z.object({ ref: z.string().optional(), sha: z.string().optional() }).loose().optional(),
    base: z.object({ ref: z.string().optional(), sha: z.string().optional() }).loose().optional(),
    url: z.string().optional(),
    html_url: z.string().optional(),
  })
  .loose();

/** Payload schema of each supported event type. */
export const payloadSchemas = {
  PushEvent: z
    .object({
      push_id: z.number(),
      ref: z.string(),
      head: z.string(),
      before: z.string().optional(),
      // Number of commits in the push; `commits` lists at most 20 of them. Optional: GitHub's
      // events API stopped sending size/commits for PushEvents in 2025 (GH Archive keeps them).
      size: z.number().int().nonnegative().optional(),
      distinct_size: z.number().int().nonnegative().optional(),
      commits: z.array(commit).optional(),
    })
    .loose(),
  IssuesEvent: z.object({ action: z.string(), issue }).loose(),
  IssueCommentEvent: z.object({ action: z.string(), issue, comment }).loose(),
  PullRequestEvent: z
    .object({ action: z.string(), number: z.number(), pull_request: pullRequest })
    .loose(),
  PullRequestReviewEvent: z
    .object({
      action: z.string(),
      review: z
        .object({
          id: z.number(),
          state: z.string(),
          body: z.string().nullable().optional(),
          commit_id: z.string().optional(),
          user: user.optional(),
          html_url: z.string().optional(),
        })
        .loose(),
      pull_request: pullRequest,
    })
    .loose(),
  PullRequestReviewCommentEvent: z
    .object({
      // Both absent on 2012 events, which carried only the comment.
      action: z.string().optional(),
      comment: comment.extend({ path: z.string().nullable().optional(), commit_id: z.string() }),
      pull_request: pullRequest.optional(),
    })
    .loose(),
  WatchEvent: z.object({ action: z.string() }).loose(),
  ForkEvent: z
    .object({
      forkee: z
        .object({
          id: z.number(),
          name: z.string(),
          full_name: z.string().optional(),
          html_url: z.string().optional(),
        })
        .loose(),
    })
    .loose(),
  CreateEvent: z
    .object({
      ref: z.string().nullable(),
      ref_type: z.enum(['repository', 'branch', 'tag']),
      master_branch: z.string().optional(),
      description: z.string().nullable().optional(),
      pusher_type: z.string().optional(),
    })
    .loose(),
  DeleteEvent: z
    .object({
      ref: z.string(),
      ref_type: z.enum(['branch', 'tag']),
      pusher_type: z.string().optional(),
    })
    .loose(),
  ReleaseEvent: z
    .object({
      action: z.string(),
      release: z
        .object({
          id: z.number(),
          tag_name: z.string(),
          name: z.string().nullable().optional(),
          body: z.string().nullable().optional(),
          author: user.optional(),
          html_url: z.string().optional(),
        })
        .loose(),
    })
    .loose(),
  CommitCommentEvent: z
    .object({
      comment: comment.extend({ commit_id: z.string(), path: z.string().nullable().optional() }),
    })
    .loose(),
  GollumEvent: z
    .object({
      pages: z.array(
        z
          .object({
            page_name: z.string(),
            title: z.string(),
            action: z.string(),
            sha: z.string().optional(),
            html_url: z.string().optional(),
          })
          .loose(),
      ),
    })
    .loose(),
  MemberEvent: z
    .object({
      action: z.string(),
      member: z.object({ id: z.number(), login: z.string() }).loose(),
    })
    .loose(),
  // The payload is empty: the event itself is the news (a repository went public).
  PublicEvent: z.object({}).loose(),
} as const;

export type GitHubEventTypeName = keyof typeof payloadSchemas;

/** The event type names with a typed message type and transform, in a stable order. */
export const gitHubEventTypeNames = Object.keys(payloadSchemas) as GitHubEventTypeName[];

function typedEventSchema<N extends GitHubEventTypeName>(name: N) {
  return gitHubEventSchema.extend({ type: z.literal(name), payload: payloadSchemas[name] });
}

type TypedEventSchema<N extends GitHubEventTypeName> = ReturnType<typeof typedEventSchema<N>>;

/** A feed event of type `N` with its payload typed. */
export type TypedGitHubEvent<N extends GitHubEventTypeName> = z.output<TypedEventSchema<N>>;

export type PushEvent = TypedGitHubEvent<'PushEvent'>;

function buildMessageTypes(): { [N in GitHubEventTypeName]: MessageType<TypedGitHubEvent<N>> } {
  const types: Partial<Record<GitHubEventTypeName, MessageType<unknown>>> = {};
  for (const name of gitHubEventTypeNames) {
    types[name] = defineMessageType(`github.${name}`, 1, typedEventSchema(name));
  }
  return types as { [N in GitHubEventTypeName]: MessageType<TypedGitHubEvent<N>> };
}

/** `github.PushEvent@1`, `github.IssuesEvent@1`, ...: one message type per event type. */
export const gitHubEventMessageTypes = buildMessageTypes();
