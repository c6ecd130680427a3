// The GitHub API double answers like the real responses recorded in
// test/fixtures/github/events_responses.json.gz: same headers, formats and pagination.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubApiDouble, loadFixtureEvents } from './github-api-double/server.ts';

interface Recorded {
  source: string;
  url: string;
  status: number;
  headers: [string, string][] | Record<string, string | string[]>;
}

const recorded = JSON.parse(
  gunzipSync(
    readFileSync(new URL('./fixtures/github/events_responses.json.gz', import.meta.url)),
  ).toString('utf8'),
) as Recorded[];

function headersOf(response: Recorded): Map<string, string> {
  const entries = Array.isArray(response.headers)
    ? response.headers
    : Object.entries(response.headers);
  return new Map(
    entries.map(([name, value]) => [
      name.toLowerCase(),
      Array.isArray(value) ? value.join(', ') : value,
    ]),
  );
}

// hub4j recorded all ten pages of the authenticated public feed in 2019.
const hub4j = recorded
  .filter(
    (r) => r.source === 'hub4j' && /^https:\/\/api\.github\.com\/events(\?page=\d+)?$/.test(r.url),
  )
  .map((r) => ({
    page: Number(new URL(r.url).searchParams.get('page') ?? 1),
    headers: headersOf(r),
  }))
  .sort((a, b) => a.page - b.page);

let double: GitHubApiDouble;
beforeAll(async () => {
  double = await GitHubApiDouble.start();
  double.advance(500);
});
afterAll(() => double.close());

const token = 'ghp_double_test_token';
const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${double.url}${path}`, { headers: { authorization: `token ${token}`, ...headers } });

describe('GitHub API double', () => {
  it('has the recorded pages to compare with', () => {
    expect(hub4j.map((r) => r.page)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('sends the headers GitHub sends, in the same formats', async () => {
    const real = hub4j[0]!.headers;
    const response = await get('/events');
    expect(response.status).toBe(200);
    for (const name of [
      'etag',
      'x-poll-interval',
      'last-modified',
      'cache-control',
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-reset',
      'link',
      'content-type',
      'x-github-media-type',
      'access-control-expose-headers',
    ]) {
      expect(real.has(name), `recorded response has ${name}`).toBe(true);
      expect(response.headers.has(name), `double sends ${name}`).toBe(true);
    }
    const weak = /^W\/"[0-9a-f]{32}"$/;
    expect(real.get('etag')).toMatch(weak);
    expect(response.headers.get('etag')).toMatch(weak);
    const httpDate = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
    expect(real.get('last-modified')).toMatch(httpDate);
    expect(response.headers.get('last-modified')).toMatch(httpDate);
    expect(response.headers.get('x-poll-interval')).toBe(real.get('x-poll-interval'));
    expect(response.headers.get('cache-control')).toBe(real.get('cache-control'));
    expect(response.headers.get('x-ratelimit-limit')).toBe(real.get('x-ratelimit-limit'));
    expect(response.headers.get('content-type')).toBe(real.get('content-type'));
  });

  it('paginates like the public feed: 30 per page by default, rel links as recorded, page 10 the last', async () => {
    for (const { page, headers } of hub4j) {
      const response = await get(page === 1 ? '/events' : `/events?page=${page}`);
      const expected = headers.get('link')?.replaceAll('https://api.github.com', double.url);
      expect(response.headers.get('link') ?? undefined, `page ${page}`).toBe(expected);
      expect(((await response.json()) as unknown[]).length).toBe(30);
    }
    expect((await get('/events?page=11')).status).toBe(422);
    const big = await get('/events?per_page=100&page=3');
    expect(((await big.json()) as unknown[]).length).toBe(100);
    expect(big.headers.get('link')).not.toContain('rel="next"');
  });

  it('serves the real events newest first, at most 300', async () => {
    const pushed = loadFixtureEvents().slice(0, 500);
    const pages = await Promise.all(
      [1, 2, 3].map((p) => get(`/events?per_page=100&page=${p}`).then((r) => r.json())),
    );
    const ids = (pages.flat() as { id: string }[]).map((e) => e.id);
    expect(ids).toEqual(
      pushed
        .slice(-300)
        .reverse()
        .map((e) => e.id),
    );
  });

  it('counts the rate limit down per request like the recorded pages, but not for 304s', async () => {
    const recordedRemaining = hub4j.map((r) => Number(r.headers.get('x-ratelimit-remaining')));
    const recordedSteps = recordedRemaining.slice(1).map((n, i) => recordedRemaining[i]! - n);
    expect(recordedSteps.every((step) => step === 1)).toBe(true);

    const first = await get('/events');
    const etag = first.headers.get('etag')!;
    const before = Number(first.headers.get('x-ratelimit-remaining'));
    const second = await get('/events?page=2');
    expect(Number(second.headers.get('x-ratelimit-remaining'))).toBe(before - 1);
    const notModified = await get('/events', { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe('');
    expect(Number(notModified.headers.get('x-ratelimit-remaining'))).toBe(before - 1);
    expect(double.remaining(token)).toBe(before - 1);
    // A new event changes the first page, so the old ETag no longer matches.
    double.advance(1);
    expect((await get('/events', { 'if-none-match': etag })).status).toBe(200);
  });

  it('answers 403 with X-RateLimit-Remaining: 0 when a token is exhausted, and refills at the reset', async () => {
    const spent = 'ghp_spent';
    double.exhaust(spent, 1);
    const limited = await fetch(`${double.url}/events`, {
      headers: { authorization: `token ${spent}` },
    });
    expect(limited.status).toBe(403);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(limited.headers.get('x-ratelimit-reset')) * 1000;
    expect(reset).toBeGreaterThan(Date.now() - 1000);
    expect(((await limited.json()) as { message: string }).message).toMatch(/rate limit exceeded/);
    const deadline = Date.now() + 5_000;
    while (Date.now() <= reset) {
      if (Date.now() > deadline) throw new Error('reset did not come');
      await new Promise((resolve) => setTimeout(resolve, reset - Date.now() + 5));
    }
    const again = await fetch(`${double.url}/events`, {
      headers: { authorization: `token ${spent}` },
    });
    expect(again.status).toBe(200);
  });

  it('answers 429/403 with Retry-After for a secondary limit, and 5xx on demand', async () => {
    double.secondaryRateLimitNext(429, 7);
    const secondary = await get('/events');
    expect(secondary.status).toBe(429);
    expect(secondary.headers.get('retry-after')).toBe('7');
    expect(((await secondary.json()) as { message: string }).message).toMatch(
      /secondary rate limit/,
    );
    double.failNext(1, 503);
    expect((await get('/events')).status).toBe(503);
    expect((await get('/events')).status).toBe(200);
  });

  it('serves repo, org and user feeds and 404s the rest', async () => {
    const pushed = loadFixtureEvents().slice(0, 501);
    const repo = pushed.at(-1)!.repo.name;
    const body = (await (await get(`/repos/${repo}/events`)).json()) as {
      repo: { name: string };
    }[];
    expect(body.length).toBeGreaterThan(0);
    expect(body.every((e) => e.repo.name === repo)).toBe(true);
    expect((await get('/nope')).status).toBe(404);
  });
});
