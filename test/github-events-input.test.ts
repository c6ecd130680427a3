// The events input, tested only through octokit against the local GitHub API double.
import { fileURLToPath } from 'node:url';
import type { Logger, StreamRecord } from '@codefeedr/core';
import {
  GitHubAuthError,
  eventsInput,
  replayInput,
  type EventsInputOptions,
  type GitHubEvent,
  type GitHubEventsSource,
} from '@codefeedr/plugin-github';
import { afterEach, describe, expect, it } from 'vitest';
import { sourceRecordError } from '@codefeedr/core';
import {
  FIXTURE,
  GitHubApiDouble,
  loadFixtureEvents,
  type FixtureEvent,
} from './github-api-double/server.ts';

interface LogLine {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

function capturingLogger(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

const doubles: GitHubApiDouble[] = [];
const controller = new AbortController();
afterEach(async () => {
  await Promise.all(doubles.splice(0).map((d) => d.close()));
});

async function startDouble(options: Parameters<typeof GitHubApiDouble.start>[0] = {}) {
  const double = await GitHubApiDouble.start({ pollIntervalSeconds: 0.01, ...options });
  doubles.push(double);
  return double;
}

async function openSource(
  double: GitHubApiDouble,
  options: EventsInputOptions = {},
  logs: LogLine[] = [],
) {
  const stage = eventsInput.create('events', {
    baseUrl: double.url,
    retryBaseDelayMs: 10,
    ...options,
  });
  const source = (await stage.createSource({
    stageId: 'events',
    pipelineName: 'test',
    logger: capturingLogger(logs),
    signal: controller.signal,
  })) as GitHubEventsSource;
  return source;
}

/** Polls until `done(emitted)` holds, failing with a clear message at the deadline. */
async function pollUntil(
  source: GitHubEventsSource,
  done: (emitted: StreamRecord<GitHubEvent>[]) => boolean,
  { maxRecords = 100, deadlineMs = 15_000 } = {},
): Promise<StreamRecord<GitHubEvent>[]> {
  const emitted: StreamRecord<GitHubEvent>[] = [];
  const deadline = Date.now() + deadlineMs;
  while (!done(emitted)) {
    if (Date.now() > deadline) {
      throw new Error(
        `condition not met within ${deadlineMs} ms; emitted ${emitted.length} events`,
      );
    }
    emitted.push(...(await source.poll(maxRecords, controller.signal)));
  }
  return emitted;
}

/** Polls until the double has answered `n` more feed requests, returning what was emitted. */
async function pollRequests(source: GitHubEventsSource, double: GitHubApiDouble, n: number) {
  const target = double.requests.length + n;
  return pollUntil(source, () => double.requests.length >= target);
}

/** GitHub's order for emission: created_at, then numeric id. */
function eventTimeOrder(events: readonly FixtureEvent[]): string[] {
  return [...events]
    .sort((a, b) => {
      const t = Date.parse(a.created_at) - Date.parse(b.created_at);
      return t !== 0 ? t : Number(BigInt(a.id) - BigInt(b.id));
    })
    .map((e) => e.id);
}

const ids = (records: StreamRecord<GitHubEvent>[]) => records.map((r) => r.value.id);

describe('GitHub events input against the API double', () => {
  it('emits what the feed holds once, oldest first, with event time = created_at, 100 per page', async () => {
    const double = await startDouble();
    const pushed = double.advance(250);
    const source = await openSource(double);
    const emitted = await pollUntil(source, (out) => out.length >= 250);
    expect(ids(emitted)).toEqual(eventTimeOrder(pushed));
    for (const record of emitted) {
      expect(record.timestamp).toBe(Date.parse(record.value.created_at));
      expect(record.key).toBe(record.value.repo.name);
    }
    const feedRequests = double.requests.filter((r) => r.status === 200);
    expect(feedRequests.map((r) => [r.page, r.perPage])).toEqual([
      [1, 100],
      [2, 100],
      [3, 100],
    ]);
    expect(source.metrics.eventsEmitted).toBe(250);
  });

  it('neither duplicates nor loses events when polls overlap, and pages only as far as needed', async () => {
    const double = await startDouble();
    const source = await openSource(double);
    const all: StreamRecord<GitHubEvent>[] = [];
    for (const batch of [120, 7, 60, 1, 90]) {
      double.advance(batch);
      all.push(...(await pollUntil(source, (out) => out.length >= batch)));
      // One more poll answers 304 and emits nothing.
      all.push(...(await pollRequests(source, double, 1)));
    }
    expect(ids(all)).toHaveLength(278);
    expect(new Set(ids(all)).size).toBe(278);
    expect(new Set(ids(all))).toEqual(new Set(double.pushed().map((e) => e.id)));
    expect(source.metrics.gaps).toBe(0);
    expect(source.metrics.duplicatesSkipped).toBeGreaterThan(0);
    // After the first poll, a poll of <100 new events needs page 1 only (it overlaps).
    const pagesAfterFirst = double.requests.filter((r) => r.status === 200 && r.page > 1);
    expect(pagesAfterFirst.map((r) => r.page)).toEqual([2]);
  });

  it('sends the first page ETag as If-None-Match; 304s cost no rate limit', async () => {
    const double = await startDouble();
    double.advance(40);
    const token = 'ghp_conditional_token';
    const source = await openSource(double, { tokens: [token] });
    await pollUntil(source, (out) => out.length >= 40);
    const remainingAfterFirst = double.remaining(token);
    await pollRequests(source, double, 5);
    const last5 = double.requests.slice(-5);
    expect(last5.map((r) => r.status)).toEqual([304, 304, 304, 304, 304]);
    expect(last5.every((r) => r.ifNoneMatch?.startsWith('W/"'))).toBe(true);
    expect(double.remaining(token)).toBe(remainingAfterFirst);
    expect(source.metrics.notModified).toBe(5);
    // New events change the ETag: the next poll is a 200 and costs one request.
    double.advance(3);
    const more = await pollUntil(source, (out) => out.length >= 3);
    expect(more).toHaveLength(3);
    expect(double.remaining(token)).toBe(remainingAfterFirst - 1);
  });

  it('waits at least X-Poll-Interval between polls', async () => {
    const double = await startDouble({ pollIntervalSeconds: 0.3 });
    double.advance(5);
    const source = await openSource(double);
    await pollUntil(source, (out) => out.length >= 5);
    const start = double.requests.length;
    const began = Date.now();
    await pollRequests(source, double, 2);
    const elapsed = Date.now() - began;
    expect(double.requests.length - start).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(2 * 300 - 50);
  });

  it('honours a configured minimum interval above X-Poll-Interval', async () => {
    const double = await startDouble({ pollIntervalSeconds: 0 });
    double.advance(5);
    const source = await openSource(double, { minPollIntervalMs: 250 });
    await pollUntil(source, (out) => out.length >= 5);
    const began = Date.now();
    await pollRequests(source, double, 2);
    expect(Date.now() - began).toBeGreaterThanOrEqual(2 * 250 - 50);
  });

  it('detects a gap once when 400 events arrive between two polls, and says how big it is', async () => {
    const double = await startDouble();
    const logs: LogLine[] = [];
    const source = await openSource(double, {}, logs);
    double.advance(50);
    await pollUntil(source, (out) => out.length >= 50);
    const newestSeen = double.pushed().at(-1)!;
    const burst = double.advance(400);
    const emitted = await pollUntil(source, (out) => out.length >= 300);
    await pollRequests(source, double, 2);
    const served = burst.slice(-300);
    expect(ids(emitted)).toEqual(eventTimeOrder(served));
    expect(source.metrics.gaps).toBe(1);
    const warnings = logs.filter((l) => l.level === 'warn' && /missed/.test(l.message));
    expect(warnings).toHaveLength(1);
    const oldestServed = served.reduce((a, b) => (BigInt(a.id) < BigInt(b.id) ? a : b));
    const expectedIds = Number(BigInt(oldestServed.id) - BigInt(newestSeen.id) - 1n);
    expect(warnings[0]!.fields).toMatchObject({
      newestSeenId: newestSeen.id,
      oldestFetchedId: oldestServed.id,
      missedIds: expectedIds,
    });
    expect(warnings[0]!.message).toContain(`up to ${expectedIds} ids`);

    // The back-fill the warning names: the GH Archive hours of the gap, and a replay of them
    // that yields exactly the missed events — here replayed from the fixture the double serves.
    const backfill = source.lastGap!;
    expect(warnings[0]!.fields?.backfill).toEqual(backfill);
    const hour = (iso: string) => {
      const d = new Date(iso);
      return `https://data.gharchive.org/${d.toISOString().slice(0, 10)}-${d.getUTCHours()}.json.gz`;
    };
    expect(backfill.hours[0]).toBe(hour(newestSeen.created_at));
    expect(backfill.hours.at(-1)).toBe(hour(oldestServed.created_at));
    for (const url of backfill.hours) expect(warnings[0]!.message).toContain(url);
    const replay = replayInput.create('events', {
      paths: fileURLToPath(FIXTURE),
      ...backfill.replay,
    });
    const replaySource = await replay.createSource({
      stageId: 'events',
      pipelineName: 'backfill',
      logger: capturingLogger([]),
      signal: controller.signal,
    });
    const backfilled: string[] = [];
    for (let batch; (batch = await replaySource.poll(500, controller.signal)) !== null;)
      backfilled.push(...batch.map((r) => r.value.id));
    await replaySource.close();
    // Independently: the fixture's events with ids strictly between the two the poller saw.
    const between = loadFixtureEvents()
      .filter((e) => BigInt(e.id) > BigInt(newestSeen.id) && BigInt(e.id) < BigInt(oldestServed.id))
      .map((e) => e.id);
    expect([...backfilled].sort()).toEqual([...between].sort());
    const missed = burst.slice(0, -300).map((e) => e.id);
    expect(missed.length).toBe(100);
    expect(backfilled).toEqual(expect.arrayContaining(missed));
    const emittedIds = new Set(ids(emitted));
    expect(backfilled.filter((id) => emittedIds.has(id))).toEqual([]);
  });

  it('waits for the reset on a primary rate limit (403, X-RateLimit-Remaining: 0), then succeeds', async () => {
    const double = await startDouble();
    const token = 'ghp_only_token';
    double.advance(10);
    double.exhaust(token, 1);
    const source = await openSource(double, { tokens: [token] });
    const began = Date.now();
    const emitted = await pollUntil(source, (out) => out.length >= 10);
    expect(emitted).toHaveLength(10);
    expect(double.requests[0]!.status).toBe(403);
    expect(double.requests.at(-1)!.status).toBe(200);
    expect(source.metrics.rateLimited).toBe(1);
    expect(Date.now() - began).toBeGreaterThanOrEqual(500);
  });

  it.each([403, 429] as const)(
    'waits Retry-After on a secondary rate limit (%i), then succeeds',
    async (status) => {
      const double = await startDouble();
      double.advance(10);
      double.secondaryRateLimitNext(status, 1);
      const source = await openSource(double);
      const began = Date.now();
      const emitted = await pollUntil(source, (out) => out.length >= 10);
      expect(emitted).toHaveLength(10);
      expect(double.requests.map((r) => r.status).slice(0, 2)).toEqual([status, 200]);
      expect(source.metrics.secondaryRateLimited).toBe(1);
      expect(Date.now() - began).toBeGreaterThanOrEqual(950);
    },
  );

  it('rotates to the next token when one is rate-limited, without waiting', async () => {
    const double = await startDouble();
    double.advance(10);
    double.exhaust('ghp_first', 3_600);
    const source = await openSource(double, { tokens: ['ghp_first', 'ghp_second'] });
    const began = Date.now();
    await pollUntil(source, (out) => out.length >= 10);
    // Waiting for the first token would take an hour (its reset); rotating takes no wait.
    expect(Date.now() - began).toBeLessThan(20_000);
    expect(source.metrics.rateLimitWaitMs).toBe(0);
    expect(double.requests.map((r) => [r.token, r.status])).toEqual([
      ['ghp_first', 403],
      ['ghp_second', 200],
    ]);
    double.advance(5);
    await pollUntil(source, (out) => out.length >= 5);
    expect(double.requests.at(-1)!.token).toBe('ghp_second');
    expect(source.metrics.keyRotations).toBe(1);
  });

  it('retries 5xx through octokit, and backs off and polls again when retries run out', async () => {
    const double = await startDouble();
    double.advance(20);
    double.failNext(2, 502);
    const source = await openSource(double, { retries: 3 });
    await pollUntil(source, (out) => out.length >= 20);
    expect(double.requests.map((r) => r.status)).toEqual([502, 502, 200]);
    expect(source.metrics.failedPolls).toBe(0);

    double.advance(5);
    double.failNext(4, 503); // one try + 3 retries: the poll fails, the next one succeeds
    const after = await pollUntil(source, (out) => out.length >= 5);
    expect(after).toHaveLength(5);
    expect(source.metrics.failedPolls).toBe(1);
  });

  it('survives the API being unreachable: backs off, then resumes where it was', async () => {
    const double = await startDouble();
    double.advance(30);
    const source = await openSource(double, { retries: 1 });
    await pollUntil(source, (out) => out.length >= 30);
    const port = Number(new URL(double.url).port);
    await double.close();
    doubles.splice(doubles.indexOf(double), 1);
    // Nothing listens: the poll fails after octokit's retry, and the source keeps going.
    await pollUntil(source, () => source.metrics.failedPolls >= 1);
    const back = await GitHubApiDouble.start({ pollIntervalSeconds: 0.01, port });
    doubles.push(back);
    back.advance(45); // the same first 30 events, and 15 new ones
    const after = await pollUntil(source, (out) => out.length >= 15);
    await pollRequests(source, back, 2);
    expect(ids(after)).toEqual(eventTimeOrder(back.pushed().slice(30)));
  });

  it('emits an event that breaks github.Event@1 once, as a dead-letter record with the reason', async () => {
    const fixture = loadFixtureEvents().slice(0, 20);
    const broken = { ...fixture[10]!, actor: { login: 'no-id' } } as unknown as FixtureEvent;
    const events = [...fixture.slice(0, 10), broken, ...fixture.slice(11)];
    const double = await startDouble({ events });
    double.advance(20);
    const source = await openSource(double);
    const out = await pollUntil(source, (o) => o.length >= 20);
    await pollRequests(source, double, 2);
    const bad = out.filter((r) => sourceRecordError(r) !== undefined);
    expect(bad).toHaveLength(1);
    expect(sourceRecordError(bad[0]!)!.message).toMatch(new RegExp(`${broken.id}.*actor\\.id`));
    expect(JSON.parse(bad[0]!.value as unknown as string)).toEqual(broken);
    expect(out.filter((r) => sourceRecordError(r) === undefined)).toHaveLength(19);
  });

  it('resumes from a saved position without re-emitting or skipping', async () => {
    const double = await startDouble();
    double.advance(150);
    const first = await openSource(double);
    // Stop half-way through a poll's events: the position must cover only what was emitted.
    const part = await pollUntil(first, (out) => out.length >= 60, { maxRecords: 30 });
    expect(part).toHaveLength(60);
    const saved = JSON.parse(JSON.stringify(first.position()));
    await first.close();

    double.advance(40);
    const second = await openSource(double);
    await second.restore(saved);
    const rest = await pollUntil(second, (out) => out.length >= 130);
    await pollRequests(second, double, 2);
    const all = [...ids(part), ...ids(rest)];
    expect(all).toHaveLength(190);
    expect(new Set(all)).toEqual(new Set(double.pushed().map((e) => e.id)));

    // A restart after everything was emitted asks with the ETag and gets a 304.
    const again = await openSource(double);
    await again.restore(JSON.parse(JSON.stringify(second.position())));
    const none = await pollRequests(again, double, 2);
    expect(none).toHaveLength(0);
    expect(double.requests.slice(-2).map((r) => r.status)).toEqual([304, 304]);
  });

  it('with startAt "new", skips what the feed holds at the first poll', async () => {
    const double = await startDouble();
    double.advance(50);
    const source = await openSource(double, { startAt: 'new' });
    expect(await pollRequests(source, double, 2)).toHaveLength(0);
    const fresh = double.advance(7);
    const emitted = await pollUntil(source, (out) => out.length >= 7);
    expect(ids(emitted)).toEqual(eventTimeOrder(fresh));
  });

  it('reads repo, org and user feeds', async () => {
    const double = await startDouble();
    const pushed = double.advance(2_000);
    const counts = new Map<string, number>();
    for (const e of pushed) counts.set(e.repo.name, (counts.get(e.repo.name) ?? 0) + 1);
    const repo = [...counts].find(([name, n]) => n >= 3 && /^[\w.-]+\/[\w.-]+$/.test(name))![0];
    const source = await openSource(double, { feed: { repo } });
    const expected = pushed.filter((e) => e.repo.name === repo).slice(-300);
    const emitted = await pollUntil(source, (out) => out.length >= expected.length);
    expect(ids(emitted)).toEqual(eventTimeOrder(expected));
    expect(double.requests[0]!.path).toBe(`/repos/${repo}/events`);

    const org = pushed.find((e) => e.org)!.org!.login;
    const orgSource = await openSource(double, { feed: { org } });
    const orgExpected = pushed.filter((e) => e.org?.login === org).slice(-300);
    expect(ids(await pollUntil(orgSource, (out) => out.length >= orgExpected.length))).toEqual(
      eventTimeOrder(orgExpected),
    );

    const user = pushed[0]!.actor.login;
    const userSource = await openSource(double, { feed: { user } });
    const userExpected = pushed.filter((e) => e.actor.login === user).slice(-300);
    expect(ids(await pollUntil(userSource, (out) => out.length >= userExpected.length))).toEqual(
      eventTimeOrder(userExpected),
    );
  });

  it('never puts a token in logs, errors or metrics', async () => {
    const secret = 'ghp_TOPSECRETtoken1234567890';
    const good = 'ghp_ANOTHERsecret0987654321';
    const double = await startDouble({ validTokens: [good] });
    double.advance(30);
    double.exhaust(good, 1);
    double.failNext(5, 500);
    double.secondaryRateLimitNext(429, 1);
    const logs: LogLine[] = [];
    const source = await openSource(double, { tokens: [good], retries: 1 }, logs);
    await pollUntil(source, (out) => out.length >= 30, { deadlineMs: 20_000 });

    const bad = await openSource(double, { tokens: [secret] }, logs);
    const error = await bad.poll(10, controller.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GitHubAuthError);
    expect((error as GitHubAuthError).code).toBe('GITHUB_AUTH_FAILED');
    const everything = JSON.stringify({
      logs,
      error: { message: (error as Error).message, details: (error as GitHubAuthError).details },
      metrics: [source.metrics, bad.metrics],
      position: source.position(),
    });
    expect(logs.length).toBeGreaterThan(0);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(good);
    expect(everything).not.toContain('TOPSECRET');
  });
});
