// The events input when GitHub's API cannot be reached at all: no HTTP answer is not an
// "HTTP 500", and it is not retried forever. (Its HTTP behaviour is tested against the API
// double in test/github-events-input.test.ts.)
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ConsoleLogger, type StageContext } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { GitHubConnectionError } from './errors.js';
import { eventsInput, type EventsInputOptions, type GitHubEventsSource } from './events-input.js';

const fixture = new URL('../../../test/fixtures/github/events.ndjson.gz', import.meta.url);
const events = gunzipSync(readFileSync(fixture))
  .toString('utf8')
  .split('\n')
  .slice(0, 20)
  .map((line) => JSON.parse(line) as unknown);

/** A log line as core's ConsoleLogger writes it in JSON: `msg`, `level`, then the fields. */
type LogLine = Record<string, unknown>;

function openSource(options: EventsInputOptions, logs: LogLine[]): Promise<GitHubEventsSource> {
  const logger = new ConsoleLogger({
    format: 'json',
    level: 'debug',
    write: (line) => void logs.push(JSON.parse(line) as LogLine),
  });
  const ctx: StageContext = {
    stageId: 'events',
    pipelineName: 'unreachable',
    logger,
    signal: new AbortController().signal,
  };
  return eventsInput.create('events', options).createSource(ctx) as Promise<GitHubEventsSource>;
}

/** A loopback port nothing listens on: bound by a server that is closed again at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls until the source throws (or `limitMs` passes); resolves with what it threw and when. */
async function pollUntilItThrows(
  source: GitHubEventsSource,
  limitMs: number,
): Promise<{ error: unknown; afterMs: number; records: number }> {
  const signal = new AbortController().signal;
  const started = Date.now();
  let records = 0;
  while (Date.now() - started < limitMs) {
    try {
      records += (await source.poll(100, signal)).length;
    } catch (error) {
      return { error, afterMs: Date.now() - started, records };
    }
  }
  throw new Error(`the source was still polling after ${limitMs} ms`);
}

const mentions500 = (logs: LogLine[]) =>
  logs.filter((l) => l['status'] === 500 || /HTTP 500/.test(JSON.stringify(l)));

describe('eventsInput when GitHub cannot be reached', () => {
  it('at the first poll: fails at once, naming the URL and the refusal, not as HTTP 500', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const logs: LogLine[] = [];
    // Default retries and backoff: octokit alone would wait 1 + 4 + 9 s, then poll again forever.
    const source = await openSource({ baseUrl: url }, logs);
    const { error, afterMs } = await pollUntilItThrows(source, 10_000);
    expect(error).toBeInstanceOf(GitHubConnectionError);
    const failure = error as GitHubConnectionError;
    expect(failure.code).toBe('GITHUB_CONNECTION_FAILED');
    expect(failure.message).toContain(
      `Cannot connect to GitHub at ${url}/events: nothing accepts connections there (ECONNREFUSED).`,
    );
    expect(failure.message).toContain('`baseUrl`');
    expect(failure.retryable).toBe(false);
    expect(afterMs).toBeLessThan(2_000);
    expect(mentions500(logs)).toEqual([]);
  });

  it('after it answered: a bounded number of polls in a row, then the stage fails', async () => {
    const server: Server = createHttpServer((_request, response) => {
      response.writeHead(200, {
        'content-type': 'application/json',
        'x-poll-interval': '0',
        etag: '"v1"',
      });
      response.end(JSON.stringify(events));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const logs: LogLine[] = [];
    const source = await openSource(
      { baseUrl: url, maxUnreachablePolls: 2, retryBaseDelayMs: 10, defaultPollIntervalMs: 0 },
      logs,
    );
    const signal = new AbortController().signal;
    let first = 0;
    while (first < events.length) first += (await source.poll(100, signal)).length;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

    const { error, records } = await pollUntilItThrows(source, 20_000);
    expect(records).toBe(0);
    expect(error).toBeInstanceOf(GitHubConnectionError);
    expect((error as Error).message).toContain(
      `Cannot connect to GitHub at ${url}/events: nothing accepts connections there (ECONNREFUSED), 3 polls in a row.`,
    );
    const retried = logs.filter(
      (l) => l['msg'] === 'GitHub could not be reached; polling again after a backoff',
    );
    expect(retried.map((l) => [l['url'], l['attempt']])).toEqual([
      [`${url}/events`, 1],
      [`${url}/events`, 2],
    ]);
    expect(mentions500(logs)).toEqual([]);
    expect(source.metrics.failedPolls).toBe(3);
  });
});
