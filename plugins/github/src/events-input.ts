import { setTimeout as delay } from 'node:timers/promises';
import { badSourceRecord, defineInput, isKeyManager, z, type KeyManager } from '@codefeedr/core';
import type { JsonValue, Logger, Source, StreamRecord } from '@codefeedr/core';
import { Octokit } from '@octokit/core';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { GitHubAuthError, GitHubConnectionError, GitHubFeedError } from './errors.js';
import { GitHubEventType, type GitHubEvent } from './event-types.js';
import { ghArchiveBackfill, type GapBackfill } from './gap-backfill.js';
import { feedPath, feedSchema } from './github-feed.js';
import { StaticKeyManager } from './key-manager.js';
import { RecentIdWindow, compareEventIds } from './recent-id-window.js';

export const eventsInputConfigSchema = z.object({
  /** Which feed: the public timeline (`GET /events`) or one repo's, org's or user's. */
  feed: feedSchema,
  /** Tokens to rotate through (secrets: never logged). Without any, requests are anonymous (60/hour). */
  tokens: z.array(z.string().min(1)).default([]),
  /** A shared key manager (e.g. the Redis one) instead of `tokens`. */
  keyManager: z.custom<KeyManager>(isKeyManager, 'keyManager must have acquire()').optional(),
  /** The name the key manager knows GitHub's budget under. */
  keyTarget: z.string().default('github'),
  baseUrl: z.url().default('https://api.github.com'),
  /** Never poll more often than this, whatever X-Poll-Interval says. */
  minPollIntervalMs: z.number().int().nonnegative().default(0),
  /** Used until GitHub has sent an X-Poll-Interval. */
  defaultPollIntervalMs: z.number().int().nonnegative().default(60_000),
  perPage: z.number().int().min(1).max(100).default(100),
  /** GitHub serves the events feed up to page 10 (300 events at 100 per page, in practice 3). */
  maxPages: z.number().int().min(1).max(10).default(10),
  /** Ids remembered for de-duplication across polls (bounded memory; see RecentIdWindow). */
  dedupWindow: z.number().int().min(300).default(1_000),
  /** `available`: the first poll emits what the feed holds; `new`: only events after it. */
  startAt: z.enum(['available', 'new']).default('available'),
  /** Retries of one request on 5xx/network errors (octokit's retry plugin), then the poll is retried later. */
  retries: z.number().int().nonnegative().default(3),
  /**
   * Polls in a row that may get no HTTP answer at all (refused, unresolvable, timed out), each
   * after a longer backoff, before the stage fails. Before GitHub has answered once, the first
   * such poll fails the stage: it most likely means a wrong `baseUrl`.
   */
  maxUnreachablePolls: z.number().int().nonnegative().default(10),
  /** Base of the retry backoff (retry n waits n² × this); also the base of the poll backoff after failures. */
  retryBaseDelayMs: z.number().int().positive().default(1_000),
  userAgent: z.string().default('codefeedr-plugin-github'),
});

export type EventsInputConfig = z.output<typeof eventsInputConfigSchema>;
export type EventsInputOptions = z.input<typeof eventsInputConfigSchema>;

/** What the poller counts; tokens never appear here. */
export interface EventsInputMetrics {
  polls: number;
  /** 304 Not Modified answers to the conditional first page (cost no rate limit). */
  notModified: number;
  pagesFetched: number;
  eventsEmitted: number;
  duplicatesSkipped: number;
  /** Polls whose pages did not reach back to the newest event already seen. */
  gaps: number;
  /** Sum over gaps of the id distance between the newest seen and oldest fetched event. */
  missedIdsEstimate: number;
  /** Primary rate limits hit (403/429 with X-RateLimit-Remaining: 0). */
  rateLimited: number;
  /** Secondary rate limits (Retry-After), waited out by octokit's throttling plugin. */
  secondaryRateLimited: number;
  keyRotations: number;
  /** Polls that failed after octokit's retries (5xx, network) and were retried later. */
  failedPolls: number;
  /** Time spent waiting for a rate limit to reset, ms. */
  rateLimitWaitMs: number;
}

/** The poller's position: restoring it neither re-emits nor skips. */
interface EventsPosition {
  v: 1;
  /** ETag of the first page of the last poll whose events were all emitted. */
  etag: string | null;
  /** Highest event id emitted and its created_at: the gap detector's reference. */
  newestId: string | null;
  newestCreatedAt: string | null;
  /** Ids recently emitted, oldest first. */
  recentIds: string[];
}

interface FeedResponse {
  status: number;
  headers: Record<string, string | number | undefined>;
  data: unknown;
}

function header(headers: FeedResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return value === undefined ? undefined : String(value);
}

function nextLink(link: string | undefined): string | undefined {
  return link?.match(/<([^>]+)>;\s*rel="next"/)?.[1];
}

function byEventTime(a: GitHubEvent, b: GitHubEvent): number {
  const ta = Date.parse(a.created_at);
  const tb = Date.parse(b.created_at);
  return ta !== tb ? ta - tb : compareEventIds(a.id, b.id);
}

interface RequestFailure {
  status?: number;
  message?: string;
  response?: { headers?: FeedResponse['headers']; data?: unknown };
}

// Node's socket error codes (undici's under fetch), in words a user acts on.
const CONNECTION_REASONS: Record<string, string> = {
  ECONNREFUSED: 'nothing accepts connections there (ECONNREFUSED)',
  ENOTFOUND: 'the host name does not resolve (ENOTFOUND)',
  EAI_AGAIN: 'the host name cannot be resolved right now (EAI_AGAIN)',
  ETIMEDOUT: 'the connection timed out (ETIMEDOUT)',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out (UND_ERR_CONNECT_TIMEOUT)',
  EHOSTUNREACH: 'the host is unreachable (EHOSTUNREACH)',
  ENETUNREACH: 'the network is unreachable (ENETUNREACH)',
  ECONNRESET: 'the connection was reset (ECONNRESET)',
  UND_ERR_SOCKET: 'the connection was closed mid-request (UND_ERR_SOCKET)',
};

/**
 * The socket error code behind a failed request that got no HTTP answer at all. octokit
 * reports those as status 500 (its `fetch failed` wrapper), which is not what GitHub said.
 */
function connectionFailureCode(error: unknown): string | undefined {
  const failure = error as { status?: unknown; response?: unknown } | null;
  if (failure === null || typeof failure !== 'object' || failure.response !== undefined)
    return undefined;
  let current: unknown = error;
  for (let depth = 0; typeof current === 'object' && current !== null && depth < 8; depth++) {
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (typeof code === 'string' && code in CONNECTION_REASONS) return code;
    current = cause;
  }
  return undefined;
}

const ThrottledOctokit = Octokit.plugin(throttling, retry);

/** Carry the id and time of an event that is emitted as a dead-letter record. */
const EVENT_ID_HEADER = 'codefeedr-github-event-id';
const EVENT_CREATED_AT_HEADER = 'codefeedr-github-created-at';

/**
 * Polls a GitHub events feed through octokit. One poll: the first page conditionally (the
 * ETag of the previous first page; a 304 costs no rate limit), then `Link: rel="next"` pages
 * until the pages reach events already seen or the feed ends. New events are emitted once,
 * oldest first, with event time = created_at.
 */
export class GitHubEventsSource implements Source<GitHubEvent> {
  readonly metrics: EventsInputMetrics = {
    polls: 0,
    notModified: 0,
    pagesFetched: 0,
    eventsEmitted: 0,
    duplicatesSkipped: 0,
    gaps: 0,
    missedIdsEstimate: 0,
    rateLimited: 0,
    secondaryRateLimited: 0,
    keyRotations: 0,
    failedPolls: 0,
    rateLimitWaitMs: 0,
  };

  private readonly octokit: InstanceType<typeof ThrottledOctokit>;
  private readonly keys: KeyManager | undefined;
  private readonly path: string;
  private recent: RecentIdWindow;
  private etag: string | null = null;
  private newestId: string | null = null;
  private newestCreatedAt: string | null = null;
  /** The GH Archive back-fill of the most recent gap (also in its warning), for callers that automate it. */
  lastGap: GapBackfill | undefined;
  /** Events fetched but not yet returned by poll(), oldest first. */
  private pending: StreamRecord<GitHubEvent>[] = [];
  /** ETag to adopt once `pending` is drained (adopting it earlier could skip events on restart). */
  private pendingEtag: string | null = null;
  private nextPollAt = 0;
  private consecutiveFailures = 0;
  /** Polls in a row that got no HTTP answer at all (refused, unresolvable, timed out). */
  private connectionFailures = 0;
  /** Whether the API has ever answered (any HTTP status): until then, no answer fails at once. */
  private answered = false;
  /** The URL of the last request, for messages (it holds no credential: tokens go in headers). */
  private lastUrl = '';
  private lastKey: string | undefined;
  private started = false;
  /** Events of the current poll that failed github.Event@1, with the reason. */
  private invalid = new WeakMap<object, string>();

  constructor(
    private readonly config: EventsInputConfig,
    private readonly logger: Logger,
  ) {
    this.path = feedPath(config.feed);
    this.recent = new RecentIdWindow(config.dedupWindow);
    this.keys =
      config.keyManager ??
      (config.tokens.length > 0 ? new StaticKeyManager(config.tokens) : undefined);
    this.octokit = new ThrottledOctokit({
      baseUrl: config.baseUrl,
      userAgent: config.userAgent,
      // octokit's own log lines carry no credentials; route them to the stage's logger.
      log: {
        debug: () => {},
        info: () => {},
        warn: (message: string) => logger.warn(`octokit: ${message}`),
        error: (message: string) => logger.error(`octokit: ${message}`),
      },
      throttle: {
        // Primary limits come back to poll(): it rotates to another token or waits for the reset.
        onRateLimit: () => false,
        onSecondaryRateLimit: (retryAfter: number) => {
          this.metrics.secondaryRateLimited++;
          this.metrics.rateLimitWaitMs += retryAfter * 1000;
          this.logger.warn('GitHub secondary rate limit: waiting before retrying', {
            feed: this.path,
            retryAfterSeconds: retryAfter,
          });
          return true;
        },
      },
      retry: { retries: config.retries, retryAfterBaseValue: config.retryBaseDelayMs },
    });
  }

  async poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<GitHubEvent>[]> {
    if (this.pending.length === 0) {
      const wait = this.nextPollAt - Date.now();
      // Wait in short slices so the runtime gets control back (checkpoints, shutdown).
      if (wait > 0) {
        await this.sleep(Math.min(wait, 1_000), signal);
        if (this.nextPollAt > Date.now()) return [];
      }
      if (signal.aborted) return [];
      await this.pollFeed(signal);
    }
    return this.take(maxRecords);
  }

  position(): JsonValue {
    const position: EventsPosition = {
      v: 1,
      etag: this.etag,
      newestId: this.newestId,
      newestCreatedAt: this.newestCreatedAt,
      recentIds: this.recent.ids(),
    };
    return position as unknown as JsonValue;
  }

  restore(position: JsonValue): void {
    const saved = position as unknown as Partial<EventsPosition> | null;
    if (!saved || saved.v !== 1) return;
    this.etag = saved.etag ?? null;
    this.newestId = saved.newestId ?? null;
    this.newestCreatedAt = saved.newestCreatedAt ?? null;
    this.recent = RecentIdWindow.from(saved.recentIds ?? [], this.config.dedupWindow);
    this.pending = [];
    this.pendingEtag = null;
    this.started = true;
  }

  async close(): Promise<void> {}

  private take(maxRecords: number): StreamRecord<GitHubEvent>[] {
    const batch = this.pending.splice(0, Math.max(1, maxRecords));
    for (const record of batch) {
      const id = record.headers?.[EVENT_ID_HEADER] ?? record.value.id;
      this.recent.add(id);
      if (this.newestId === null || compareEventIds(id, this.newestId) > 0) {
        this.newestId = id;
        this.newestCreatedAt = record.headers?.[EVENT_CREATED_AT_HEADER] ?? record.value.created_at;
      }
    }
    this.metrics.eventsEmitted += batch.length;
    if (this.pending.length === 0 && this.pendingEtag !== null) {
      this.etag = this.pendingEtag;
      this.pendingEtag = null;
    }
    return batch;
  }

  private async pollFeed(signal: AbortSignal): Promise<void> {
    this.metrics.polls++;
    let pollIntervalMs = this.config.defaultPollIntervalMs;
    try {
      const first = await this.request(this.path, signal, this.etag);
      pollIntervalMs = this.pollInterval(first.headers);
      if (first.status === 304) {
        this.metrics.notModified++;
        this.consecutiveFailures = 0;
        return;
      }
      const fetched: GitHubEvent[] = [];
      let reachedSeen = false;
      let response: FeedResponse | undefined = first;
      for (let page = 1; response; page++) {
        this.metrics.pagesFetched++;
        const events = this.parsePage(response.data);
        fetched.push(...events);
        // Stop paging once a page overlaps what was already emitted: older pages hold nothing new.
        // (Overlap = an emitted id, not an id below the high-water mark: GitHub publishes some
        // events late, so a lower id on page 1 does not mean page 2 was seen.)
        if (this.recent.size > 0 && events.some((e) => this.recent.has(e.id))) {
          reachedSeen = true;
          break;
        }
        const next = nextLink(header(response.headers, 'link'));
        response =
          next && page < this.config.maxPages ? await this.request(next, signal) : undefined;
      }
      this.accept(fetched, reachedSeen);
      this.pendingEtag = header(first.headers, 'etag') ?? null;
      if (this.pending.length === 0) {
        this.etag = this.pendingEtag;
        this.pendingEtag = null;
      }
      this.consecutiveFailures = 0;
      this.connectionFailures = 0;
    } catch (error) {
      if (signal.aborted) return;
      pollIntervalMs = this.handleFailure(error);
    } finally {
      this.nextPollAt = Date.now() + Math.max(pollIntervalMs, this.config.minPollIntervalMs);
    }
  }

  /** Queues the not-yet-seen events oldest first, and reports a gap when the pages fell short. */
  private accept(fetched: GitHubEvent[], reachedSeen: boolean): void {
    const fresh: GitHubEvent[] = [];
    const inThisPoll = new Set<string>();
    for (const event of fetched) {
      // Pages can repeat events when the feed moves between page requests.
      if (this.recent.has(event.id) || inThisPoll.has(event.id)) {
        this.metrics.duplicatesSkipped++;
        continue;
      }
      inThisPoll.add(event.id);
      fresh.push(event);
    }
    if (!this.started && this.config.startAt === 'new') {
      this.started = true;
      for (const event of fresh) this.recent.add(event.id);
      const newest = fresh.reduce<GitHubEvent | undefined>(
        (max, e) => (max === undefined || compareEventIds(e.id, max.id) > 0 ? e : max),
        undefined,
      );
      if (newest) {
        this.newestId = newest.id;
        this.newestCreatedAt = newest.created_at;
      }
      return;
    }
    if (!reachedSeen && this.recent.size > 0 && fetched.length > 0) this.reportGap(fetched);
    this.started = true;
    fresh.sort(byEventTime);
    for (const event of fresh) {
      const timestamp = Date.parse(event.created_at);
      const problem = this.invalid.get(event);
      if (problem === undefined) {
        this.pending.push({ key: event.repo.name, value: event, timestamp });
        continue;
      }
      // Kept, not dropped: the runtime sends it to the dead-letter topic with the reason.
      const bad = badSourceRecord(
        JSON.stringify(event),
        `GitHub event ${event.id} does not match github.Event@1: ${problem}`,
        Number.isFinite(timestamp) ? timestamp : Date.now(),
        { [EVENT_ID_HEADER]: event.id, [EVENT_CREATED_AT_HEADER]: event.created_at },
      );
      this.pending.push(bad as unknown as StreamRecord<GitHubEvent>);
    }
  }

  private reportGap(fetched: GitHubEvent[]): void {
    let oldest = fetched[0]!;
    for (const event of fetched) if (compareEventIds(event.id, oldest.id) < 0) oldest = event;
    const missedIds = Number(BigInt(oldest.id) - BigInt(this.newestId!) - 1n);
    const spanMs =
      Date.parse(oldest.created_at) - Date.parse(this.newestCreatedAt ?? oldest.created_at);
    this.metrics.gaps++;
    this.metrics.missedIdsEstimate += Math.max(0, missedIds);
    const backfill = ghArchiveBackfill({
      newestSeenId: this.newestId!,
      newestSeenCreatedAt: this.newestCreatedAt ?? oldest.created_at,
      oldestFetchedId: oldest.id,
      oldestFetchedCreatedAt: oldest.created_at,
      feed: this.config.feed,
    });
    this.lastGap = backfill;
    this.logger.warn(
      `GitHub events feed ${this.path}: events were missed between two polls (up to ${missedIds} ids over ${Math.round(spanMs / 1000)} s). Back-fill them from GH Archive once its hour files are out (about an hour after each hour): download ${backfill.hours.join(' ')} and replay them with the replay input's idsAfter "${backfill.replay.idsAfter}" and idsBefore "${backfill.replay.idsBefore}" (and this feed). To miss fewer, poll a narrower feed (repo/org/user).`,
      {
        feed: this.path,
        newestSeenId: this.newestId,
        oldestFetchedId: oldest.id,
        missedIds,
        fromCreatedAt: this.newestCreatedAt,
        toCreatedAt: oldest.created_at,
        spanMs,
        backfill,
      },
    );
  }

  private parsePage(data: unknown): GitHubEvent[] {
    if (!Array.isArray(data)) {
      throw new GitHubFeedError(200, this.path, 'the response body is not a JSON array of events');
    }
    const events: GitHubEvent[] = [];
    for (const item of data) {
      const result = GitHubEventType.schema.safeParse(item);
      if (result.success) {
        events.push(result.data);
        continue;
      }
      const raw = item as Partial<GitHubEvent> | null;
      const problem = result.error.issues
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ');
      if (typeof raw?.id === 'string' && typeof raw.created_at === 'string') {
        // De-duplicated by id like any event, then emitted as a dead-letter record.
        this.invalid.set(raw, problem);
        events.push(raw as GitHubEvent);
      } else {
        this.logger.error('GitHub returned an item that is not an event (no id/created_at)', {
          feed: this.path,
          problem,
        });
      }
    }
    return events;
  }

  private pollInterval(headers: FeedResponse['headers']): number {
    const seconds = Number(header(headers, 'x-poll-interval'));
    return Number.isFinite(seconds) && seconds >= 0
      ? seconds * 1000
      : this.config.defaultPollIntervalMs;
  }

  /** One GET with a key from the key manager; rotates keys and waits out primary rate limits. */
  private async request(
    url: string,
    signal: AbortSignal,
    etag?: string | null,
  ): Promise<FeedResponse> {
    for (;;) {
      const key = await this.acquireKey(signal);
      const headers: Record<string, string> = {};
      if (key !== undefined) headers.authorization = `token ${key}`;
      if (etag) headers['if-none-match'] = etag;
      this.lastUrl = /^https?:\/\//.test(url)
        ? url
        : `${this.config.baseUrl.replace(/\/$/, '')}${url}`;
      try {
        const response = await this.octokit.request(`GET ${url}`, {
          ...(url === this.path ? { per_page: this.config.perPage } : {}),
          headers,
          // Until the API has answered once, no answer is most likely a wrong baseUrl: fail
          // at once rather than after octokit's retries (1 + 4 + 9 s by default).
          request: { signal, ...(this.answered ? {} : { retries: 0 }) },
        });
        this.answered = true;
        await this.report(key, response.headers);
        return { status: response.status, headers: response.headers, data: response.data };
      } catch (error) {
        const failure = error as RequestFailure;
        if (failure.response !== undefined && !this.answered) {
          this.answered = true;
          // The first answer is a server error, to a request sent without octokit's retries
          // (see above): retry it as they would have.
          if ((failure.status ?? 0) >= 500 && this.config.retries > 0) {
            await this.sleep(this.config.retryBaseDelayMs, signal);
            continue;
          }
        }
        const responseHeaders = failure.response?.headers ?? {};
        if (failure.status === 304) {
          // No rate limit spent; X-Poll-Interval still applies.
          return { status: 304, headers: responseHeaders, data: undefined };
        }
        await this.report(key, responseHeaders);
        if (
          (failure.status === 403 || failure.status === 429) &&
          header(responseHeaders, 'x-ratelimit-remaining') === '0'
        ) {
          this.metrics.rateLimited++;
          await this.onPrimaryRateLimit(key, responseHeaders, signal);
          continue;
        }
        if (
          failure.status === 429 ||
          (failure.status === 403 && header(responseHeaders, 'retry-after'))
        ) {
          // A limit octokit did not recognise as secondary: honour Retry-After ourselves.
          const seconds = Number(header(responseHeaders, 'retry-after')) || 60;
          this.metrics.secondaryRateLimited++;
          await this.waitFor(seconds * 1000, signal);
          continue;
        }
        throw error;
      }
    }
  }

  private async acquireKey(signal: AbortSignal): Promise<string | undefined> {
    if (!this.keys) return undefined;
    for (;;) {
      const acquired = await this.keys.acquire(this.config.keyTarget, 1);
      if (acquired) {
        if (this.lastKey !== undefined && acquired.key !== this.lastKey)
          this.metrics.keyRotations++;
        this.lastKey = acquired.key;
        return acquired.key;
      }
      const resetAt = this.keys.nextResetAt?.(this.config.keyTarget);
      const waitMs = resetAt !== undefined ? resetAt - Date.now() + 500 : 5_000;
      this.logger.warn('Every GitHub token is rate-limited: waiting for a reset', {
        feed: this.path,
        waitMs,
      });
      await this.waitFor(waitMs, signal);
    }
  }

  private async report(key: string | undefined, headers: FeedResponse['headers']): Promise<void> {
    if (key === undefined || !this.keys?.reportRateLimit) return;
    const remaining = Number(header(headers, 'x-ratelimit-remaining'));
    const reset = Number(header(headers, 'x-ratelimit-reset'));
    if (!Number.isFinite(remaining) || !Number.isFinite(reset)) return;
    await this.keys.reportRateLimit(this.config.keyTarget, key, {
      remaining,
      resetAt: reset * 1000,
    });
  }

  private async onPrimaryRateLimit(
    key: string | undefined,
    headers: FeedResponse['headers'],
    signal: AbortSignal,
  ): Promise<void> {
    const resetAt = Number(header(headers, 'x-ratelimit-reset')) * 1000;
    // With a key manager, the next acquire() rotates to a token with budget left, or waits.
    if (key !== undefined && this.keys?.reportRateLimit) return;
    const waitMs = Number.isFinite(resetAt) ? resetAt - Date.now() + 500 : 60_000;
    this.logger.warn('GitHub rate limit reached: waiting for the reset', {
      feed: this.path,
      waitMs,
    });
    await this.waitFor(waitMs, signal);
  }

  private async waitFor(ms: number, signal: AbortSignal): Promise<void> {
    const waitMs = Math.max(0, ms);
    this.metrics.rateLimitWaitMs += waitMs;
    await this.sleep(waitMs, signal);
    if (signal.aborted) throw signal.reason ?? new Error('aborted');
  }

  private async sleep(ms: number, signal: AbortSignal): Promise<void> {
    try {
      await delay(ms, undefined, { signal });
    } catch {
      // Aborted: the caller checks the signal.
    }
  }

  /**
   * 5xx/network errors after octokit's retries: back off and poll again. Auth errors stop the
   * stage, and so does a GitHub that cannot be reached: at the first poll, or after
   * `maxUnreachablePolls` such polls in a row.
   */
  private handleFailure(error: unknown): number {
    const failure = error as RequestFailure;
    const connection = connectionFailureCode(error);
    if (connection !== undefined) return this.handleConnectionFailure(connection, error);
    const status = failure.status;
    const reason = describeFailure(failure);
    if (status === 401 || status === 403) throw new GitHubAuthError(status, this.path, reason);
    if (status === 404 || status === 410 || status === 422)
      throw new GitHubFeedError(status, this.path, reason);
    if (error instanceof GitHubFeedError) throw error;
    this.metrics.failedPolls++;
    this.consecutiveFailures++;
    const backoffMs = Math.min(
      60_000,
      this.config.retryBaseDelayMs * 2 ** (this.consecutiveFailures - 1),
    );
    this.logger.warn('GitHub events poll failed after retries; polling again after a backoff', {
      feed: this.path,
      status: status ?? null,
      reason,
      backoffMs,
    });
    return backoffMs;
  }

  /** No HTTP answer (octokit calls it a 500, which GitHub never said). */
  private handleConnectionFailure(code: string, error: unknown): number {
    this.metrics.failedPolls++;
    this.connectionFailures++;
    if (!this.answered || this.connectionFailures > this.config.maxUnreachablePolls)
      throw new GitHubConnectionError(
        this.lastUrl,
        code,
        CONNECTION_REASONS[code] ?? code,
        this.connectionFailures,
        error,
      );
    const backoffMs = Math.min(
      60_000,
      this.config.retryBaseDelayMs * 2 ** (this.connectionFailures - 1),
    );
    this.logger.warn('GitHub could not be reached; polling again after a backoff', {
      url: this.lastUrl,
      code,
      attempt: this.connectionFailures,
      of: this.config.maxUnreachablePolls,
      backoffMs,
    });
    return backoffMs;
  }
}

/** The server's message only: never the request (its headers hold the token). */
function describeFailure(failure: RequestFailure): string {
  const data = failure.response?.data as { message?: unknown } | undefined;
  if (typeof data?.message === 'string') return data.message;
  return failure.status ? `HTTP ${failure.status}` : (failure.message ?? 'network error');
}

/** `@codefeedr/plugin-github:events` — the GitHub events feed, polled through octokit. */
export const eventsInput = defineInput({
  name: 'events',
  description:
    'Polls a GitHub events feed (public, repo, org or user) with ETags, X-Poll-Interval, rate-limit handling and token rotation; emits each event once, oldest first.',
  configSchema: eventsInputConfigSchema,
  outputType: GitHubEventType,
  createSource: (config, ctx) => new GitHubEventsSource(config, ctx.logger),
});
