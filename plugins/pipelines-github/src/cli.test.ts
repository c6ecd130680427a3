// `codefeedr-github-summary` as its users run it: the built bin, in a process of its own.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';

const bin = new URL('../dist/cli.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'cf-github-summary-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function summary(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], {
      cwd: dir,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('codefeedr-github-summary', () => {
  it('--splits 2 replays the hour files in two threads: every event counted and written once', async () => {
    // The bundled events of 2015-01-01 12:00-12:59, as two "hour" files (minutes 0x-2x, 3x-5x).
    const lines = gunzipSync(readFileSync(BUNDLED_EVENTS)).toString('utf8').split('\n');
    const ofMinutes = (tens: string) =>
      lines.filter((l) => new RegExp(`"created_at":"2015-01-01T12:[${tens}]`).test(l));
    mkdirSync(join(dir, 'hours'));
    writeFileSync(join(dir, 'hours/2015-01-01-12.json.gz'), gzipSync(ofMinutes('012').join('\n')));
    writeFileSync(join(dir, 'hours/2015-01-01-13.json.gz'), gzipSync(ofMinutes('345').join('\n')));
    const events = ofMinutes('012').length + ofMinutes('345').length;
    const run = await summary(['--splits', '2', '--output', 'out.ndjson', 'hours']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${events.toLocaleString('en-US')} events in`);
    expect(run.stderr).toContain(`✓ finished: ${events.toLocaleString('en-US')} events`);
    expect(run.stderr).toContain('out.split-0.ndjson … (one file per split)');
    const written = ['out.split-0.ndjson', 'out.split-1.ndjson'].flatMap((f) =>
      readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean),
    );
    expect(written).toHaveLength(events);
  });

  it('refuses a bad --splits and a paced replay in splits, as invalid input (exit 2)', async () => {
    const zero = await summary(['--splits', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--splits 0 is not a whole number of at least 1');
    const paced = await summary(['--splits', '2', '--speed', '60', 'hours']);
    expect(paced.code).toBe(2);
    expect(paced.stderr).toContain('speed: a paced replay cannot run in 2 splits');
  });
});
