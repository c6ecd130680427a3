// `npm start` as a user runs it: `node scripts/start.mjs` builds quietly (no lerna/nx output
// unless the build fails) and runs the main job, whose summary includes the windowed tables and
// whose file output holds every bundled event. The figures themselves are checked against an
// independent count in plugins/pipelines-github/src/github-summary-pipeline.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'cf-main-job-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function npmStart(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['scripts/start.mjs', ...args], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm start (the main job)', () => {
  it('builds quietly, prints the summary with its event-time tables, and writes every event', async () => {
    const output = join(dir, 'events.ndjson');
    const { code, stdout, stderr } = await npmStart(['--output', output]);
    expect(code, stderr).toBe(0);
    // No build chatter: one "building" line and one "built in" line before the job's own output.
    expect(stderr).not.toMatch(/lerna|nx |Successfully ran|tsup|CLI Building/i);
    expect(stderr).toMatch(/^building the packages…\nbuilt in [\d.]+ s\n/);
    for (const section of [
      'EVENT TYPE',
      'TOP REPOSITORIES BY PUSHES',
      'BUSIEST 10-MINUTE WINDOWS (EVENT TIME)',
      'BUSIEST HOURS (EVENT TIME)',
      'TRENDING ',
    ])
      expect(
        stdout.split('\n').some((line) => line.startsWith(section)),
        section,
      ).toBe(true);
    const bundled = gunzipSync(
      readFileSync(join(root, 'plugins/pipelines-github/data/events.ndjson.gz')),
    )
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '').length;
    const written = readFileSync(output, 'utf8').split('\n').filter(Boolean).length;
    expect(written).toBe(bundled);
    expect(stderr).toMatch(/✓ finished: 10,557 events/);
  });
});
