// issue-response-time against plain loops over the bundled GH Archive events: every number a
// row carries (issues opened, answered, unanswered, p50 and p90 delays, window bounds) is
// recomputed here from the parsed events, in every output the pipeline has and in both modes.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ConfigError, silentLogger } from '@codefeedr/core';
import { mongoConnectionConfigSchema, openMongo } from '@codefeedr/plugin-mongodb';
import { openPostgresPool, postgresConnectionSchema } from '@codefeedr/plugin-postgres';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';
import {
  issueResponseTime,
  issueResponseTimeBuilder,
  issueResponseTimePipeline,
} from './issue-response-time-pipeline.js';
import type { IssueResponseTime } from './issue-response-time-stats.js';
import {
  bundledEvents,
  iso,
  readNdjson,
  rowsInline,
  rowsOverKafka,
  type FixtureEvent,
} from './windowed-test-support.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-issue-response-'));
const postgresUrl = process.env.CODEFEEDR_POSTGRES_URL;
const mongoUrl = process.env.CODEFEEDR_MONGODB_URL;
if (!postgresUrl || !mongoUrl)
  throw new Error(
    'CODEFEEDR_POSTGRES_URL / CODEFEEDR_MONGODB_URL are not set: run through vitest (its global setup starts the servers) or `npm run services:up`.',
  );
const run = randomBytes(4).toString('hex');
const table = `t${run}_issue_response_time`;
const database = `t_${run}_issue_response`;
const { pool } = await openPostgresPool(postgresConnectionSchema.parse({ url: postgresUrl }));
const mongo = await openMongo(mongoConnectionConfigSchema.parse({ url: mongoUrl, database }));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await pool.query(`DROP TABLE IF EXISTS "${table}"`);
  await pool.end();
  await mongo.db.dropDatabase();
  await mongo.client.close();
});

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The fields of the two event types this pipeline reads. */
interface IssueEventFields extends FixtureEvent {
  actor: { login: string };
  payload: FixtureEvent['payload'] & { issue?: { number: number; user?: { login: string } } };
}

/**
 * The rows by plain loops: every opened issue, its earliest comment (action created) on the
 * same repository and number by another login than the issue's author, made 0..within ms after
 * it; per repository and window of the opened time, the answered delays (sorted, nearest-rank
 * p50 and p90) and the unanswered count.
 */
function expectedResponseTimes(
  events: readonly FixtureEvent[],
  windowMs = HOUR,
  within = DAY,
): IssueResponseTime[] {
  const all = events as readonly IssueEventFields[];
  const opened = all.filter((e) => e.type === 'IssuesEvent' && e.payload.action === 'opened');
  const comments = all.filter(
    (e) => e.type === 'IssueCommentEvent' && e.payload.action === 'created',
  );
  const windows = new Map<
    string,
    { repo: string; start: number; delays: number[]; none: number }
  >();
  for (const issue of opened) {
    const at = Date.parse(issue.created_at);
    const author = issue.payload.issue!.user?.login ?? issue.actor.login;
    let first: number | undefined;
    for (const c of comments) {
      if (c.repo.name !== issue.repo.name) continue;
      if (c.payload.issue!.number !== issue.payload.issue!.number) continue;
      if (c.actor.login === author) continue;
      const delay = Date.parse(c.created_at) - at;
      if (delay < 0 || delay > within) continue;
      if (first === undefined || delay < first) first = delay;
    }
    const start = Math.floor(at / windowMs) * windowMs;
    const id = `${issue.repo.name}@${iso(start)}`;
    const w = windows.get(id) ?? { repo: issue.repo.name, start, delays: [], none: 0 };
    windows.set(id, w);
    if (first === undefined) w.none++;
    else w.delays.push(first);
  }
  const rank = (sorted: number[], q: number) =>
    sorted.length === 0 ? null : sorted[Math.ceil(q * sorted.length) - 1]!;
  return byId(
    [...windows].map(([id, w]) => {
      const sorted = [...w.delays].sort((a, b) => a - b);
      return {
        id,
        repo: w.repo,
        windowStart: iso(w.start),
        windowEnd: iso(w.start + windowMs),
        issuesOpened: sorted.length + w.none,
        answered: sorted.length,
        unanswered: w.none,
        p50ResponseMs: rank(sorted, 0.5),
        p90ResponseMs: rank(sorted, 0.9),
      };
    }),
  );
}

function byId(rows: IssueResponseTime[]): IssueResponseTime[] {
  return [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

describe('issue-response-time', () => {
  const events = bundledEvents();
  const expected = expectedResponseTimes(events);

  it('emits issues opened, answered, unanswered and the p50/p90 first-response delay per repository per hour, as an independent count (inline, NDJSON)', async () => {
    // 295 issues opened in the fixture, 17 answered within 24 h by someone else.
    const answered = expected.reduce((n, r) => n + r.answered, 0);
    expect(answered).toBe(17);
    expect(expected.reduce((n, r) => n + r.unanswered, 0)).toBe(295 - 17);
    const path = join(dir, 'inline.ndjson');
    const rows = await rowsInline<IssueResponseTime>(
      issueResponseTimePipeline({ output: 'ndjson', path }),
      path,
    );
    expect(byId(rows)).toEqual(expected);
  });

  it('gives the same rows with every edge through Kafka (local mode)', async () => {
    const path = join(dir, 'local.ndjson');
    const rows = await rowsOverKafka<IssueResponseTime>(
      issueResponseTimeBuilder({ output: 'ndjson', path }),
      path,
    );
    expect(byId(rows)).toEqual(expected);
  }, 180_000);

  it('takes the window and the response bound from its config, printing to the console', async () => {
    const configs = [
      // 10 minutes to answer, 30-minute windows: fewer answered, other window bounds.
      { windowMs: 30 * MINUTE, responseWithinMs: 10 * MINUTE },
      // 60-day windows and 2 days to answer: sigmavirus24/github3.py's three answered issues of
      // early 2018 share a window, so its p50 and p90 are different delays.
      { windowMs: 60 * DAY, responseWithinMs: 2 * DAY },
    ];
    const wants = configs.map((c) => expectedResponseTimes(events, c.windowMs, c.responseWithinMs));
    const answered = (rows: IssueResponseTime[]) => rows.reduce((n, r) => n + r.answered, 0);
    expect(answered(wants[0]!)).toBeGreaterThan(0);
    expect(answered(wants[0]!)).toBeLessThan(answered(expected));
    expect(wants[1]!.some((r) => r.answered >= 3 && r.p50ResponseMs! < r.p90ResponseMs!)).toBe(
      true,
    );
    for (const [i, config] of configs.entries()) {
      let printed = '';
      vi.spyOn(process.stdout, 'write').mockImplementation(((
        chunk: string | Uint8Array,
        ...rest: unknown[]
      ) => {
        printed += String(chunk);
        (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
        return true;
      }) as typeof process.stdout.write);
      const pipeline = await issueResponseTime.create(config);
      const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
      vi.restoreAllMocks();
      expect(summary.deadLetters).toEqual([]);
      const rows = printed
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as IssueResponseTime);
      expect(byId(rows)).toEqual(wants[i]);
    }
  });

  it('upserts its rows into PostgreSQL and MongoDB, once each on a rerun', async () => {
    for (let rerun = 0; rerun < 2; rerun++) {
      for (const options of [
        { output: 'postgres', url: postgresUrl, table },
        { output: 'mongodb', url: mongoUrl, database, table },
      ] as const) {
        const pipeline = await issueResponseTime.create(options);
        const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
        expect(summary.deadLetters).toEqual([]);
      }
    }
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT id, repo, "windowStart", "windowEnd", "issuesOpened", answered, unanswered, "p50ResponseMs", "p90ResponseMs" FROM "${table}"`,
    );
    const nullable = (v: unknown) => (v === null ? null : Number(v));
    const stored = rows.map((r): IssueResponseTime => ({
      id: r.id as string,
      repo: r.repo as string,
      windowStart: new Date(r.windowStart as string).toISOString(),
      windowEnd: new Date(r.windowEnd as string).toISOString(),
      issuesOpened: Number(r.issuesOpened),
      answered: Number(r.answered),
      unanswered: Number(r.unanswered),
      p50ResponseMs: nullable(r.p50ResponseMs),
      p90ResponseMs: nullable(r.p90ResponseMs),
    }));
    expect(byId(stored)).toEqual(expected);
    const documents = await mongo.db.collection(table).find({}).toArray();
    expect(
      byId(
        documents.map((d) => {
          const { _id, ...row } = d as unknown as IssueResponseTime & { _id: string };
          expect(_id).toBe(row.id);
          return row;
        }),
      ),
    ).toEqual(expected);
  }, 300_000);

  it('dead-letters issues and comments behind the watermark bound, saying why, instead of dropping them', async () => {
    // The 2015 hour's issues and comments, then older ones: those arrive far behind the watermark.
    const lines = gunzipSync(readFileSync(BUNDLED_EVENTS)).toString('utf8').split('\n');
    const wanted = lines.filter((l) => /"type":"(IssuesEvent|IssueCommentEvent)"/.test(l));
    const hour = wanted.filter((l) => l.includes('"created_at":"2015-01-01T12:'));
    const older = wanted
      .map((l) => JSON.parse(l) as IssueEventFields)
      .filter((e) => Date.parse(e.created_at) < Date.parse('2015-01-01T11:00:00Z'));
    // Only opened issues and created comments reach the join; the others are filtered before it.
    const lateCount = older.filter(
      (e) =>
        (e.type === 'IssuesEvent' && e.payload.action === 'opened') ||
        (e.type === 'IssueCommentEvent' && e.payload.action === 'created'),
    ).length;
    expect(hour.length).toBeGreaterThan(100);
    expect(lateCount).toBeGreaterThan(0);
    writeFileSync(join(dir, 'a-hour.ndjson'), hour.join('\n') + '\n');
    writeFileSync(
      join(dir, 'b-older.ndjson'),
      older.map((e) => JSON.stringify(e)).join('\n') + '\n',
    );
    const path = join(dir, 'late.ndjson');
    const deadLetters = join(dir, 'dlq');
    const summary = await issueResponseTimeBuilder({
      paths: [join(dir, 'a-hour.ndjson'), join(dir, 'b-older.ndjson')],
      output: 'ndjson',
      path,
    })
      .setDeadLetter({ dir: deadLetters, retries: 0 })
      .build()
      .run({ mode: 'inline', logger: silentLogger, batchSize: 1 });
    expect(summary.deadLetters).toEqual([
      expect.objectContaining({ stage: 'response-times', count: lateCount }),
    ]);
    const [file] = readdirSync(deadLetters);
    const letters = readNdjson<Record<string, unknown>>(join(deadLetters, file!));
    expect(letters).toHaveLength(lateCount);
    for (const letter of letters)
      expect(JSON.stringify(letter)).toMatch(/came after the watermark .* raise outOfOrdernessMs/);
    const hourEvents = hour.map((l) => JSON.parse(l) as FixtureEvent);
    expect(byId(readNdjson<IssueResponseTime>(path))).toEqual(expectedResponseTimes(hourEvents));
  });

  it('counts only the first comment by someone other than the author, within the bound', async () => {
    // One real opened issue of the fixture, with copies of a real comment event moved onto it.
    const all = events as IssueEventFields[];
    const issue = all.find((e) => e.type === 'IssuesEvent' && e.payload.action === 'opened')!;
    const real = all.find((e) => e.type === 'IssueCommentEvent')!;
    const at = Date.parse(issue.created_at);
    const comment = (login: string, afterMs: number, id: number): IssueEventFields => {
      const copy = structuredClone(real);
      copy.id = String(id);
      copy.actor = { ...copy.actor, login };
      copy.repo = issue.repo;
      copy.created_at = new Date(at + afterMs).toISOString().replace('.000Z', 'Z');
      copy.payload.issue = issue.payload.issue;
      return copy;
    };
    const author = issue.payload.issue!.user?.login ?? issue.actor.login;
    const made = [
      comment(author, 1 * MINUTE, 1), // the author's own: not an answer
      comment('helper-b', 5.5 * MINUTE, 3), // a later answer, listed first: ignored
      comment('helper-a', 5 * MINUTE, 2), // the first answer
      comment('helper-a', 9 * MINUTE, 5), // another: ignored
      comment('helper-c', 11 * MINUTE, 4), // after the bound
    ];
    const file = join(dir, 'made-up.ndjson');
    writeFileSync(file, [issue, ...made].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const path = join(dir, 'made-up-out.ndjson');
    const summary = await issueResponseTimePipeline({
      paths: file,
      output: 'ndjson',
      path,
      responseWithinMs: 10 * MINUTE,
    }).run({ mode: 'inline', logger: silentLogger, batchSize: 1 });
    expect(summary.deadLetters).toEqual([]);
    const rows = readNdjson<IssueResponseTime>(path);
    expect(rows).toEqual(expectedResponseTimes([issue, ...made], HOUR, 10 * MINUTE));
    expect(rows).toEqual([
      expect.objectContaining({ answered: 1, unanswered: 0, p50ResponseMs: 5 * MINUTE }),
    ]);
  });

  it('equals the plain loops for random issue threads, window sizes, bounds and batch sizes', async () => {
    // Real events as templates, moved onto made-up repositories, issues, logins and times.
    const all = events as IssueEventFields[];
    const openedTemplate = all.find(
      (e) => e.type === 'IssuesEvent' && e.payload.action === 'opened',
    )!;
    const commentTemplate = all.find((e) => e.type === 'IssueCommentEvent')!;
    const base = Date.parse('2015-01-01T10:00:00Z');
    const place = fc.record({
      repo: fc.constantFrom('acme/a', 'acme/b'),
      number: fc.integer({ min: 1, max: 5 }),
      login: fc.constantFrom('ann', 'bob', 'cy'),
      // Whole seconds, or the last millisecond of a 20-minute window (an end of every window size).
      ms: fc.oneof(
        fc.integer({ min: 0, max: 6 * 3600 }).map((second) => second * 1000),
        fc.integer({ min: 1, max: 18 }).map((k) => k * 20 * MINUTE - 1),
      ),
    });
    // Comments exactly at, 1 ms before and 1 ms after an issue's bound.
    const edge = fc.record({
      issue: fc.nat(),
      offset: fc.constantFrom(-1, 0, 1),
      login: fc.constantFrom('ann', 'bob', 'cy'),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(place, { selector: (i) => `${i.repo}#${i.number}`, maxLength: 8 }),
        fc.array(place, { maxLength: 25 }),
        fc.array(edge, { maxLength: 6 }),
        fc.constantFrom(20 * MINUTE, HOUR, 2 * HOUR),
        fc.integer({ min: 1, max: 150 }).map((m) => m * MINUTE),
        fc.integer({ min: 1, max: 12 }),
        async (issues, comments, edges, windowMs, within, batchSize) => {
          let id = 0;
          const event = (template: IssueEventFields, p: (typeof issues)[number]) => {
            const copy = structuredClone(template);
            copy.id = String(++id);
            copy.actor = { ...copy.actor, login: p.login };
            copy.repo = { ...copy.repo, name: p.repo };
            copy.created_at = new Date(base + p.ms).toISOString();
            copy.payload.issue = {
              ...copy.payload.issue!,
              number: p.number,
              user: { ...copy.payload.issue!.user!, login: p.login },
            };
            return copy;
          };
          const made = [
            ...issues.map((p) => event(openedTemplate, p)),
            ...comments.map((p) => event(commentTemplate, p)),
            ...(issues.length === 0 ? [] : edges).map((e) => {
              const issue = issues[e.issue % issues.length]!;
              const ms = issue.ms + within + e.offset;
              return event(commentTemplate, { ...issue, login: e.login, ms });
            }),
          ];
          // In event-time order, as GH Archive hours are (the replay reorders only within a minute).
          made.sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
          const file = join(dir, `random-${++n}.ndjson`);
          writeFileSync(file, made.map((e) => JSON.stringify(e)).join('\n') + '\n');
          const path = join(dir, `random-${n}-out.ndjson`);
          const summary = await issueResponseTimePipeline({
            paths: file,
            output: 'ndjson',
            path,
            windowMs,
            responseWithinMs: within,
          }).run({ mode: 'inline', logger: silentLogger, batchSize });
          expect(summary.deadLetters).toEqual([]);
          expect(byId(readNdjson<IssueResponseTime>(path))).toEqual(
            expectedResponseTimes(made, windowMs, within),
          );
        },
      ),
      { numRuns: 100 },
    );
  }, 120_000);

  it('refuses bad settings with a ConfigError', () => {
    expect(() => issueResponseTimePipeline({ responseWithinMs: 0 })).toThrow(ConfigError);
    expect(() => issueResponseTimePipeline({ output: 'sqlite' as 'console' })).toThrow(ConfigError);
  });
});
