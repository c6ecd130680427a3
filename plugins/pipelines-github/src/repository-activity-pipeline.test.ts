import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, silentLogger } from '@codefeedr/core';
import { openPostgresPool, postgresConnectionSchema } from '@codefeedr/plugin-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import {
  repositoryActivity,
  repositoryActivityBuilder,
  repositoryActivityPipeline,
} from './repository-activity-pipeline.js';
import type { RepositoryActivity } from './repository-activity-counts.js';
import {
  bundledEvents,
  iso,
  rowsInline,
  rowsOverKafka,
  readNdjson,
  type FixtureEvent,
} from './windowed-test-support.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-activity-'));
const postgresUrl = process.env.CODEFEEDR_POSTGRES_URL;
if (!postgresUrl)
  throw new Error(
    'CODEFEEDR_POSTGRES_URL is not set: run through vitest (its global setup starts PostgreSQL) or `npm run services:up`.',
  );
const table = `t${randomBytes(4).toString('hex')}_repository_activity`;
const { pool } = await openPostgresPool(postgresConnectionSchema.parse({ url: postgresUrl }));
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await pool.query(`DROP TABLE IF EXISTS "${table}"`);
  await pool.end();
});

const HOUR = 3_600_000;

/**
 * The rows the pipeline should emit, by plain loops: each event's created_at floored to its
 * UTC hour (or `windowMs`), per repository; pushes always count, issues and pull requests
 * only when opened; commits are `size`, else the length of `commits`.
 */
function expectedActivity(events: readonly FixtureEvent[], windowMs = HOUR): RepositoryActivity[] {
  const rows = new Map<string, RepositoryActivity>();
  for (const e of events) {
    const push = e.type === 'PushEvent';
    const issue = e.type === 'IssuesEvent' && e.payload.action === 'opened';
    const pull = e.type === 'PullRequestEvent' && e.payload.action === 'opened';
    if (!push && !issue && !pull) continue;
    const t = Date.parse(e.created_at);
    const start = Math.floor(t / windowMs) * windowMs;
    const id = `${e.repo.name}@${iso(start)}`;
    let row = rows.get(id);
    if (!row) {
      row = {
        id,
        repo: e.repo.name,
        windowStart: iso(start),
        windowEnd: iso(start + windowMs),
        pushes: 0,
        commits: 0,
        pushesWithoutCommitCount: 0,
        issuesOpened: 0,
        pullRequestsOpened: 0,
      };
      rows.set(id, row);
    }
    if (push) {
      row.pushes++;
      if (e.payload.size !== undefined) row.commits += e.payload.size;
      else if (e.payload.commits !== undefined) row.commits += e.payload.commits.length;
      else row.pushesWithoutCommitCount++;
    }
    if (issue) row.issuesOpened++;
    if (pull) row.pullRequestsOpened++;
  }
  return [...rows.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const byId = (rows: RepositoryActivity[]) =>
  [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

describe('repository-activity', () => {
  const events = bundledEvents();
  const expected = expectedActivity(events);

  it('emits pushes, commits, issues and pull requests opened per repository per hour, as an independent count (inline, NDJSON)', async () => {
    expect(expected.length).toBeGreaterThan(1000);
    expect(expected.some((r) => r.issuesOpened > 0 && r.pullRequestsOpened > 0)).toBe(true);
    const path = join(dir, 'inline.ndjson');
    const rows = await rowsInline<RepositoryActivity>(
      repositoryActivityPipeline({ output: 'ndjson', path }),
      path,
    );
    expect(byId(rows)).toEqual(expected);
  });

  it('gives the same rows with every edge through Kafka (local mode)', async () => {
    const path = join(dir, 'local.ndjson');
    const rows = await rowsOverKafka<RepositoryActivity>(
      repositoryActivityBuilder({ output: 'ndjson', path }),
      path,
    );
    expect(byId(rows)).toEqual(expected);
  }, 180_000);

  it('counts 2025-style pushes without size or commits as pushes whose commits are unknown', async () => {
    // Real pushes of the fixture with the fields GitHub's events API no longer sends removed.
    const lines = events
      .filter((e) => e.type === 'PushEvent')
      .slice(0, 300)
      .map((e, i) => {
        const copy = structuredClone(e);
        if (i % 2 === 0) {
          delete copy.payload.size;
          delete copy.payload.commits;
        }
        return copy;
      });
    const file = join(dir, 'shrunken.ndjson');
    writeFileSync(file, lines.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const path = join(dir, 'shrunken-out.ndjson');
    const summary = await repositoryActivityPipeline({ paths: file, output: 'ndjson', path }).run({
      mode: 'inline',
      logger: silentLogger,
    });
    expect(summary.deadLetters).toEqual([]);
    const rows = byId(readNdjson<RepositoryActivity>(path));
    expect(rows).toEqual(expectedActivity(lines));
    expect(rows.reduce((n, r) => n + r.pushesWithoutCommitCount, 0)).toBe(150);
  });

  it('upserts its rows into PostgreSQL, once each on a rerun', async () => {
    const options = { output: 'postgres', url: postgresUrl, table } as const;
    for (let run = 0; run < 2; run++) {
      const pipeline = await repositoryActivity.create(options);
      const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
      expect(summary.deadLetters).toEqual([]);
    }
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT id, repo, "windowStart", "windowEnd", pushes, commits, "pushesWithoutCommitCount", "issuesOpened", "pullRequestsOpened" FROM "${table}"`,
    );
    const stored = rows.map((r): RepositoryActivity => ({
      id: r.id as string,
      repo: r.repo as string,
      windowStart: new Date(r.windowStart as string).toISOString(),
      windowEnd: new Date(r.windowEnd as string).toISOString(),
      pushes: Number(r.pushes),
      commits: Number(r.commits),
      pushesWithoutCommitCount: Number(r.pushesWithoutCommitCount),
      issuesOpened: Number(r.issuesOpened),
      pullRequestsOpened: Number(r.pullRequestsOpened),
    }));
    expect(byId(stored)).toEqual(expected);
  }, 120_000);

  it('refuses bad settings with a ConfigError', () => {
    expect(() =>
      repositoryActivityPipeline({ windowMs: 0, output: 'sqlite' as 'console' }),
    ).toThrow(ConfigError);
  });
});
