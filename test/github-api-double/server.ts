// A local stand-in for GitHub's events API (api.github.com is unreachable here), modelled on
// the real responses recorded in test/fixtures/github/events_responses.json.gz: the same
// header names and formats (weak ETags, X-Poll-Interval, Last-Modified, Cache-Control,
// X-RateLimit-*, Link with rel=next/last/first/prev), 304s on If-None-Match that cost no
// rate limit, pagination capped at 300 events, per-token rate limits, and on-demand
// primary/secondary rate limits and 5xx. The feed advances only through the control API
// (`advance(n)`), so tests wait on conditions, never on the clock.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** The fields of an event the double reads; the rest is served as recorded. */
export interface FixtureEvent {
  id: string;
  type: string;
  created_at: string;
  repo: { name: string };
  actor: { login: string };
  org?: { login: string };
  [field: string]: unknown;
}

export interface GitHubApiDoubleOptions {
  /** Events `advance()` pushes, oldest first. Default: test/fixtures/github/events.ndjson.gz. */
  events?: readonly FixtureEvent[];
  /** X-Poll-Interval in seconds (GitHub: 60). Tests use a small value; fractions allowed. */
  pollIntervalSeconds?: number;
  /** Requests per window for an authenticated token (GitHub: 5,000/hour). */
  rateLimit?: number;
  /** Requests per window without a token (GitHub: 60/hour). */
  anonymousRateLimit?: number;
  rateLimitWindowSeconds?: number;
  /** Most events the feed serves (GitHub: 300). */
  feedSize?: number;
  /** When set, any other token gets 401 Bad credentials. */
  validTokens?: readonly string[];
  /** Listen on this port (default: any free one), e.g. to come back after a simulated outage. */
  port?: number;
}

export interface DoubleRequest {
  method: string;
  path: string;
  page: number;
  perPage: number;
  /** The raw token the client sent (server side only; the plugin must never log it). */
  token: string | undefined;
  ifNoneMatch: string | undefined;
  status: number;
}

interface Budget {
  limit: number;
  used: number;
  /** Epoch seconds, as X-RateLimit-Reset. */
  reset: number;
}

type Failure =
  | { kind: 'status'; status: number }
  | { kind: 'secondary'; status: 403 | 429; retryAfterSeconds: number };

export const FIXTURE = new URL('../fixtures/github/events.ndjson.gz', import.meta.url);
const DOCS = 'https://docs.github.com/rest/activity/events#list-public-events';

let fixtureCache: FixtureEvent[] | undefined;

/** The real events of the fixture, oldest first (parsed once per process). */
export function loadFixtureEvents(): FixtureEvent[] {
  fixtureCache ??= gunzipSync(readFileSync(FIXTURE))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as FixtureEvent);
  return fixtureCache;
}

function weakEtag(body: string): string {
  return `W/"${createHash('md5').update(body).digest('hex')}"`;
}

function stripWeak(tag: string): string {
  return tag.trim().replace(/^W\//, '');
}

export class GitHubApiDouble {
  readonly requests: DoubleRequest[] = [];
  /** Newest first, as GitHub serves it. */
  private feed: FixtureEvent[] = [];
  private cursor = 0;
  private readonly events: readonly FixtureEvent[];
  private readonly budgets = new Map<string, Budget>();
  private readonly failures: Failure[] = [];
  private readonly options: Required<
    Omit<GitHubApiDoubleOptions, 'events' | 'validTokens' | 'port'>
  >;
  private readonly validTokens: ReadonlySet<string> | undefined;
  private lastModified = new Date();

  private constructor(
    private readonly server: Server,
    options: GitHubApiDoubleOptions,
  ) {
    this.events = options.events ?? loadFixtureEvents();
    this.validTokens = options.validTokens ? new Set(options.validTokens) : undefined;
    this.options = {
      pollIntervalSeconds: options.pollIntervalSeconds ?? 60,
      rateLimit: options.rateLimit ?? 5_000,
      anonymousRateLimit: options.anonymousRateLimit ?? 60,
      rateLimitWindowSeconds: options.rateLimitWindowSeconds ?? 3_600,
      feedSize: options.feedSize ?? 300,
    };
  }

  static async start(options: GitHubApiDoubleOptions = {}): Promise<GitHubApiDouble> {
    const server = createServer();
    const double = new GitHubApiDouble(server, options);
    server.on('request', (req, res) => double.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    return double;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Pushes the next `n` fixture events onto the feed (newest first); returns them oldest first. */
  advance(n: number): FixtureEvent[] {
    const next = this.events.slice(this.cursor, this.cursor + n);
    if (next.length < n) {
      throw new Error(
        `GitHubApiDouble: only ${next.length} of ${n} fixture events left to advance`,
      );
    }
    this.cursor += n;
    this.feed = [...next].reverse().concat(this.feed).slice(0, 10_000);
    this.lastModified = new Date();
    return next;
  }

  /** Every event pushed so far, oldest first. */
  pushed(): FixtureEvent[] {
    return this.events.slice(0, this.cursor);
  }

  /** The next `count` feed requests fail with `status` (5xx). */
  failNext(count: number, status = 502): void {
    for (let i = 0; i < count; i++) this.failures.push({ kind: 'status', status });
  }

  /** The next feed request hits a secondary rate limit: 403 or 429 with Retry-After. */
  secondaryRateLimitNext(status: 403 | 429 = 403, retryAfterSeconds = 1): void {
    this.failures.push({ kind: 'secondary', status, retryAfterSeconds });
  }

  /** Uses up a token's budget until `resetInSeconds` from now (403 + X-RateLimit-Remaining: 0). */
  exhaust(token: string | undefined, resetInSeconds = 1): void {
    const budget = this.budget(token);
    budget.used = budget.limit;
    budget.reset = Math.ceil(Date.now() / 1000 + resetInSeconds);
  }

  /** Requests left in the current window for `token` (undefined: anonymous). */
  remaining(token?: string): number {
    const budget = this.budget(token);
    return budget.limit - budget.used;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private budget(token: string | undefined): Budget {
    const name = token ?? 'anonymous';
    const now = Date.now() / 1000;
    let budget = this.budgets.get(name);
    if (!budget || budget.reset <= now) {
      budget = {
        limit: token ? this.options.rateLimit : this.options.anonymousRateLimit,
        used: 0,
        reset: Math.ceil(now + this.options.rateLimitWindowSeconds),
      };
      this.budgets.set(name, budget);
    }
    return budget;
  }

  private feedFor(path: string): FixtureEvent[] | undefined {
    if (path === '/events') return this.feed;
    let match = path.match(/^\/repos\/([^/]+\/[^/]+)\/events$/);
    if (match) return this.feed.filter((e) => e.repo.name === decodeURIComponent(match![1]!));
    match = path.match(/^\/orgs\/([^/]+)\/events$/);
    if (match) return this.feed.filter((e) => e.org?.login === decodeURIComponent(match![1]!));
    match = path.match(/^\/users\/([^/]+)\/events(?:\/public)?$/);
    if (match) return this.feed.filter((e) => e.actor.login === decodeURIComponent(match![1]!));
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const authorization = req.headers.authorization;
    const token = authorization?.replace(/^(token|bearer)\s+/i, '') || undefined;
    const perPage = Number(url.searchParams.get('per_page') ?? 30);
    const page = Number(url.searchParams.get('page') ?? 1);
    const ifNoneMatch = req.headers['if-none-match'];
    const log: DoubleRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      page,
      perPage,
      token,
      ifNoneMatch,
      status: 0,
    };
    this.requests.push(log);

    const common: Record<string, string> = {
      Date: new Date().toUTCString(),
      Server: 'GitHub.com',
      'Content-Type': 'application/json; charset=utf-8',
      'X-GitHub-Media-Type': 'github.v3; format=json',
      'X-GitHub-Request-Id': randomBytes(8).toString('hex').toUpperCase(),
      'Access-Control-Expose-Headers':
        'ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type',
      'Access-Control-Allow-Origin': '*',
    };
    const send = (status: number, headers: Record<string, string>, body?: unknown): void => {
      log.status = status;
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, { ...common, ...headers });
      res.end(text);
    };

    const feed = req.method === 'GET' ? this.feedFor(url.pathname) : undefined;
    if (!feed) {
      send(404, {}, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      return;
    }

    if (token && this.validTokens && !this.validTokens.has(token)) {
      send(
        401,
        {},
        { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' },
      );
      return;
    }

    const failure = this.failures.shift();
    if (failure?.kind === 'status') {
      send(failure.status, {}, { message: 'Server Error' });
      return;
    }

    const budget = this.budget(token);
    const rateHeaders = (): Record<string, string> => ({
      'X-RateLimit-Limit': String(budget.limit),
      'X-RateLimit-Remaining': String(Math.max(0, budget.limit - budget.used)),
      'X-RateLimit-Reset': String(budget.reset),
      'X-RateLimit-Used': String(budget.used),
      'X-RateLimit-Resource': 'core',
    });
    if (failure?.kind === 'secondary') {
      send(
        failure.status,
        { ...rateHeaders(), 'Retry-After': String(failure.retryAfterSeconds) },
        {
          message:
            'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
          documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
        },
      );
      return;
    }
    if (budget.used >= budget.limit) {
      send(403, rateHeaders(), {
        message: `API rate limit exceeded for ${token ? 'user' : '127.0.0.1'}. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)`,
        documentation_url:
          'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting',
      });
      return;
    }

    const served = feed.slice(0, this.options.feedSize);
    const pageSize = Math.min(Math.max(1, perPage), 100);
    const maxPage = Math.ceil(this.options.feedSize / pageSize);
    if (page > maxPage) {
      budget.used++;
      send(422, rateHeaders(), {
        message:
          'In order to keep the API fast for everyone, pagination is limited for this resource.',
        documentation_url: DOCS,
      });
      return;
    }
    const lastPage = Math.max(1, Math.ceil(served.length / pageSize));
    const body = served.slice((page - 1) * pageSize, page * pageSize);
    const text = JSON.stringify(body);
    const etag = weakEtag(`${url.pathname}?${pageSize}:${page}:${text}`);
    const newest = body[0];
    const cacheHeaders: Record<string, string> = {
      'Cache-Control': `${token ? 'private' : 'public'}, max-age=60, s-maxage=60`,
      Vary: 'Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding',
      ETag: etag,
      'Last-Modified': (newest ? new Date(newest.created_at) : this.lastModified).toUTCString(),
      'X-Poll-Interval': String(this.options.pollIntervalSeconds),
    };

    if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => stripWeak(tag) === stripWeak(etag))) {
      // Conditional hit: no body, and GitHub does not count it against the rate limit.
      send(304, { ...cacheHeaders, ...rateHeaders() });
      return;
    }

    budget.used++;
    const link = (n: number): string => {
      const target = new URL(url.pathname, this.url);
      if (url.searchParams.has('per_page')) target.searchParams.set('per_page', String(pageSize));
      target.searchParams.set('page', String(n));
      return target.toString();
    };
    const links: string[] = [];
    if (page > 1) links.push(`<${link(page - 1)}>; rel="prev"`);
    if (page < lastPage) {
      links.push(`<${link(page + 1)}>; rel="next"`, `<${link(lastPage)}>; rel="last"`);
    }
    if (page > 1) links.push(`<${link(1)}>; rel="first"`);
    send(
      200,
      { ...cacheHeaders, ...rateHeaders(), ...(links.length ? { Link: links.join(', ') } : {}) },
      body,
    );
  }
}
