// The github-summary pipeline in --live mode, polling the GitHub API double through octokit.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GitHubSummary, githubSummaryPipeline } from '@codefeedr/pipelines-github';
import { afterAll, describe, expect, it } from 'vitest';
import { GitHubApiDouble } from './github-api-double/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'cf-github-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(condition: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('github-summary --live', () => {
  it('polls the feed as it advances and summarises every event once', async () => {
    const double = await GitHubApiDouble.start({ pollIntervalSeconds: 0.01 });
    try {
      const token = 'ghp_LIVEsecret1234';
      const summary = new GitHubSummary();
      const out = new PassThrough();
      let printed = '';
      out.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
      const output = join(dir, 'live.ndjson');
      const controller = new AbortController();
      const run = githubSummaryPipeline({
        live: true,
        baseUrl: double.url,
        token,
        output,
        out,
        tty: false,
        summary,
      }).run({ mode: 'inline', signal: controller.signal, batchSize: 100 });

      double.advance(120);
      await until(() => summary.events >= 120, '120 events');
      double.advance(80);
      await until(() => summary.events >= 200, '200 events');
      controller.abort();
      const result = await run;
      expect(result.status).toBe('stopped');

      const pushed = double.pushed();
      const byType: Record<string, number> = {};
      for (const e of pushed) byType[e.type] = (byType[e.type] ?? 0) + 1;
      expect(Object.fromEntries(summary.byType)).toEqual(byType);
      expect(summary.events).toBe(200);
      expect(summary.pushes).toBe(pushed.filter((e) => e.type === 'PushEvent').length);
      const lines = readFileSync(output, 'utf8').split('\n').filter(Boolean);
      expect(lines.map((l) => (JSON.parse(l) as { id: string }).id).sort()).toEqual(
        pushed.map((e) => e.id).sort(),
      );
      expect(printed).toContain('live GitHub events, done');
      expect(printed).toContain('200 events');
      expect(printed).not.toContain(token);
      expect(double.requests.every((r) => r.token === token)).toBe(true);
    } finally {
      await double.close();
    }
  });
});
