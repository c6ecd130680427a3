import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cli, expectOneError, project, REPO } from './cli-fixture.js';

const EXAMPLE = join(REPO, 'examples', 'windowed-counts');

/** A copy of the example, to change without touching the repository's. */
function exampleCopy(): string {
  const dir = mkdtempSync(join(REPO, '.tmp', 'example-'));
  cpSync(EXAMPLE, dir, { recursive: true, filter: (p) => !p.includes('.codefeedr') });
  return dir;
}

describe('codefeedr test', () => {
  it('runs the windowed example pipeline-file tests in examples/: every test passes', async () => {
    const declared = (
      parse(readFileSync(join(EXAMPLE, 'pipeline.test.yaml'), 'utf8')) as {
        tests: { name: string }[];
      }
    ).tests.map((t) => t.name);
    const result = await cli(['test', 'examples', '--json'], REPO);
    expect(result.code, result.stdout).toBe(0);
    const files = result.json()['files'] as {
      file: string;
      tests: { name: string; ok: boolean }[];
    }[];
    expect(files.map((f) => f.file)).toEqual([
      join('examples', 'windowed-counts', 'pipeline.test.yaml'),
    ]);
    expect(files[0]!.tests.map((t) => [t.name, t.ok])).toEqual(declared.map((n) => [n, true]));
    const human = await cli(['test'], EXAMPLE);
    expect(human.code, human.stdout).toBe(0);
    expect(human.stdout).toContain(
      `${declared.length} test(s) in 1 file(s): ${declared.length} passed`,
    );
  });

  it('a wrong expectation fails (exit 1) naming the stage, the record, expected and actual', async () => {
    const dir = exampleCopy();
    const file = join(dir, 'pipeline.test.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        '{ page: /home, windowStart: 0, windowEnd: 60000, views: 2 }, timestamp: 59999',
        '{ page: /home, windowStart: 0, windowEnd: 60000, views: 5 }, timestamp: 59999',
      ),
    );
    const result = await cli(['test', 'pipeline.test.yaml'], dir);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('✗ counts views per page in one-minute windows');
    expect(result.stdout).toContain(
      'stage "views": record 1: expected {"page":"/home","windowStart":0,"windowEnd":60000,"views":5} @ 59999, got {"page":"/home","windowStart":0,"windowEnd":60000,"views":2} @ 59999',
    );
    expect(result.stdout).toMatch(/passed, 1 failed/);
  });

  it('event time is the test’s: the same records with another watermark lag give other windows', async () => {
    const dir = exampleCopy();
    writeFileSync(
      join(dir, 'lag.test.yaml'),
      [
        'pipeline: pipeline.yaml',
        'tests:',
        '  - name: no lag drops the late click',
        '    input:',
        '      clicks: &clicks',
        ...[1000, 65000, 50000].map((t) => `        - { value: { page: /a }, timestamp: ${t} }`),
        '    expect: { views: [ { value: { page: /a, windowStart: 0, windowEnd: 60000, views: 1 } }, { value: { page: /a, windowStart: 60000, windowEnd: 120000, views: 1 } } ] }',
        '  - name: an upstream watermark step has no effect on a stage that makes its own',
        '    input:',
        '      clicks:',
        '        - { value: { page: /a }, timestamp: 1000 }',
        '        - { watermark: 100000 }',
        '        - { value: { page: /a }, timestamp: 2000 }',
        '    expect: { views: [ { value: { page: /a, windowStart: 0, windowEnd: 60000, views: 2 } } ] }',
        '',
      ].join('\n'),
    );
    const result = await cli(['test', 'lag.test.yaml', '--json'], dir);
    expect(result.code, result.stdout).toBe(0);
  });

  it('a malformed test file is invalid input (exit 2) with file:line, and unknown stages are named', async () => {
    const dir = exampleCopy();
    writeFileSync(
      join(dir, 'bad.test.yaml'),
      'pipeline: pipeline.yaml\ntests:\n  - name: x\n    input: { clicks: [ { valu: 1 } ] }\n    expect: { views: [] }\n',
    );
    const bad = await cli(['test', 'bad.test.yaml'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toContain('bad.test.yaml:4:');
    expect(bad.stdout).toContain('a record step needs `value`');
    writeFileSync(
      join(dir, 'ghost.test.yaml'),
      'pipeline: pipeline.yaml\ntests:\n  - name: ghosts\n    input: { ghost: [] }\n    expect: { nothing: [] }\n',
    );
    const ghost = await cli(['test', 'ghost.test.yaml'], dir);
    expect(ghost.code).toBe(1);
    expect(ghost.stdout).toContain(
      'stage "ghost": input names "ghost", which is not an input stage',
    );
    expect(ghost.stdout).toContain('stage "nothing": no stage "nothing" in the pipeline');
    const none = await cli(['test'], project());
    expect(none.code).toBe(2);
    expectOneError(none.stderr, 'USAGE_INVALID');
  });

  it('the example is what it says: its manifest is derived, and a real run matches its windows', async () => {
    const check = await cli(['manifest', '--check'], EXAMPLE);
    expect(check.code, check.stderr).toBe(0);
    const dir = exampleCopy();
    const out = join(dir, 'views.ndjson');
    const run = await cli(['run', 'pipeline.yaml'], dir, {
      CLICKS_FILE: join(dir, 'clicks.ndjson'),
      OUT_FILE: out,
    });
    expect(run.code, run.stderr).toBe(0);
    // Independently: one batch of clicks (nothing late), counted per page and minute.
    const expected = new Map<string, number>();
    for (const line of readFileSync(join(dir, 'clicks.ndjson'), 'utf8').split('\n')) {
      if (line === '') continue;
      const click = JSON.parse(line) as { page: string; at: string };
      const start = Math.floor(Date.parse(click.at) / 60_000) * 60_000;
      const key = `${click.page} ${start}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const actual = new Map(
      readFileSync(out, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { page: string; windowStart: number; views: number })
        .map((v) => [`${v.page} ${v.windowStart}`, v.views] as const),
    );
    expect(actual).toEqual(expected);
  });
});
