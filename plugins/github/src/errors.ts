import { CodefeedrError } from '@codefeedr/core';

/** GitHub refused the credentials (401, or 403 that is not a rate limit). */
export class GitHubAuthError extends CodefeedrError {
  constructor(status: number, feed: string, reason: string) {
    super(
      'GITHUB_AUTH_FAILED',
      `GitHub answered ${status} for ${feed}: ${reason}. Check the token (GITHUB_TOKEN or the stage's \`tokens\`): it must be valid and allowed to read this feed.`,
      { status, feed },
    );
  }
}

/** The feed itself cannot be read (404 for an unknown repo/org/user, 410, 422). */
export class GitHubFeedError extends CodefeedrError {
  constructor(status: number, feed: string, reason: string) {
    super(
      'GITHUB_FEED_UNAVAILABLE',
      `GitHub answered ${status} for ${feed}: ${reason}. Check the feed option (repo "owner/name", org or user name) of the events input.`,
      { status, feed },
    );
  }
}

/**
 * GitHub's API could not be reached at all (no HTTP answer): at the first poll, where it
 * most likely means a wrong `baseUrl`, or after `attempts` polls in a row later on.
 */
export class GitHubConnectionError extends CodefeedrError {
  /** @param reason - What the socket said, in words, e.g. `nothing accepts connections there (ECONNREFUSED)`. */
  constructor(url: string, code: string, reason: string, attempts: number, cause: unknown) {
    super(
      'GITHUB_CONNECTION_FAILED',
      `Cannot connect to GitHub at ${url}: ${reason}${attempts > 1 ? `, ${attempts} polls in a row` : ''}. Check the events input's \`baseUrl\` setting and the network (proxy, firewall), then run again; a restart resumes from the last checkpoint.`,
      { url, code, attempts },
      // Already retried as far as it should be (or at the first poll, not worth retrying).
      { cause, retryable: false },
    );
  }
}

/** A replay file could not be opened or decompressed. */
export class ReplayFileError extends CodefeedrError {
  constructor(path: string, cause: unknown) {
    super(
      'GITHUB_REPLAY_FILE_UNREADABLE',
      `Cannot read replay file ${path}: ${(cause as Error)?.message ?? String(cause)}. Check the path and that a .gz file is complete (gzip -t <file>).`,
      { path },
      { cause },
    );
  }
}
