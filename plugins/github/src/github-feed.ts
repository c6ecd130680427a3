import { z } from '@codefeedr/core';
import type { GitHubEvent } from './event-types.js';

/** Which events: the public timeline, or one repository's, organisation's or user's. */
export const feedSchema = z
  .union([
    z.literal('public'),
    z.object({ repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'repo must be "owner/name"') }),
    z.object({ org: z.string().min(1) }),
    z.object({ user: z.string().min(1) }),
  ])
  .default('public');

export type Feed = z.output<typeof feedSchema>;

/** The REST path of a feed (`GET /events`, `/repos/{owner}/{name}/events`, …). */
export function feedPath(feed: Feed): string {
  if (feed === 'public') return '/events';
  if ('repo' in feed) return `/repos/${feed.repo}/events`;
  if ('org' in feed) return `/orgs/${encodeURIComponent(feed.org)}/events`;
  return `/users/${encodeURIComponent(feed.user)}/events`;
}

/**
 * Whether `event` is one the feed serves: GitHub's repo feed is the repository's events, the
 * org feed its organisation's, the user feed what the user did (the actor). Names compare
 * case-insensitively, as GitHub's do.
 */
export function inFeed(event: GitHubEvent, feed: Feed): boolean {
  if (feed === 'public') return true;
  const same = (a: string | undefined, b: string) => a?.toLowerCase() === b.toLowerCase();
  if ('repo' in feed) return same(event.repo.name, feed.repo);
  if ('org' in feed) return same(event.org?.login, feed.org);
  return same(event.actor?.login, feed.user);
}
