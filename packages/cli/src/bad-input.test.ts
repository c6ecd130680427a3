import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { RunSummary } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { cli, closedPort, expectOneError, project } from './cli-fixture.js';

const lines = (file: string): string[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

/** A plugin whose config schema is a plain z.object, as the README shows (no .strict()). */
const scalePlugin = {
  'node_modules/codefeedr-plugin-scale/package.json': JSON.stringify({
    name: 'codefeedr-plugin-scale',
    version: '1.0.0',
    type: 'module',
    main: 'index.js',
    keywords: ['codefeedr-plugin'],
    codefeedr: {
      apiVersion: 1,
      components: [
        {
          name: 'scale',
          kind: 'transform',
          export: 'scale',
          description: 'Multiplies numbers by factor.',
          configSchema: { type: 'object', properties: { factor: { type: 'number', default: 2 } } },
          inputTypes: ['any@1'],
          outputType: 'any@1',
        },
      ],
    },
  }),
  'node_modules/codefeedr-plugin-scale/index.js': [
    "import { Any, defineTransform, z } from '@codefeedr/core';",
    'export const scale = defineTransform({',
    "  name: 'scale', description: 'Multiplies numbers by factor.',",
    '  configSchema: z.object({ factor: z.number().default(2) }),',
    '  inputTypes: [Any], outputType: Any,',
    '  transform: ([input], config) => input.map((n) => n * config.factor),',
    '});',
    '',
  ].join('\n'),
};

function withDependency(dir: string, name: string): void {
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'cli-fixture', version: '1.0.0', dependencies: { [name]: '1.0.0' } }),
  );
}

describe('codefeedr under bad input', () => {
  it('a config typo is an error, also for a plugin whose schema is a plain z.object', async () => {
    const dir = project(scalePlugin);
    withDependency(dir, 'codefeedr-plugin-scale');
    const pipeline = (config: string) =>
      [
        'name: typo',
        'stages:',
        '  - { id: n, use: sequence, with: { to: 3 } }',
        `  - { id: s, use: scale, from: n, with: ${config} }`,
        `  - { id: o, use: ndjson-file, from: s, with: { path: "${join(dir, 'out.ndjson')}", mode: truncate } }`,
        '',
      ].join('\n');
    writeFileSync(join(dir, 'typo.yaml'), pipeline('{ factr: 5 }'));
    for (const command of ['validate', 'run']) {
      const result = await cli([command, 'typo.yaml'], dir);
      expect(result.code, result.stderr).toBe(2);
      expectOneError(result.stderr, 'PIPELINE_INVALID');
      expect(result.stderr).toContain(
        'typo.yaml:4:43: stage "s" (codefeedr-plugin-scale:scale): with.factr is not a known field (did you mean "factor"?)',
      );
    }
    // The TypeScript path (create() outside any file) refuses it too: core's parseConfig.
    const module = (await import(
      join(dir, 'node_modules', 'codefeedr-plugin-scale', 'index.js')
    )) as { scale: { create(id: string, config: unknown): unknown } };
    expect(() => module.scale.create('s', { factr: 5 })).toThrow(/factr: unknown key/);
    writeFileSync(join(dir, 'ok.yaml'), pipeline('{ factor: 5 }'));
    const ok = await cli(['run', 'ok.yaml'], dir);
    expect(ok.code, ok.stderr).toBe(0);
    // sequence counts from 0 to `to` inclusive; scale multiplies each by factor.
    expect(lines(join(dir, 'out.ndjson'))).toEqual([0, 1, 2, 3].map((n) => String(n * 5)));
  });

  it('ndjson-file input → ndjson-file output is valid and copies every line', async () => {
    const input = Array.from({ length: 25 }, (_, i) => JSON.stringify({ n: i, at: 1000 + i }));
    const dir = project({ 'in.ndjson': `${input.join('\n')}\n` });
    writeFileSync(
      join(dir, 'copy.yaml'),
      [
        'name: copy',
        'stages:',
        `  - { id: in, use: ndjson-file, with: { path: "${join(dir, 'in.ndjson')}", timestampField: at } }`,
        `  - { id: out, use: ndjson-file, from: in, with: { path: "${join(dir, 'out.ndjson')}", mode: truncate } }`,
        '',
      ].join('\n'),
    );
    const valid = await cli(['validate', 'copy.yaml'], dir);
    expect(valid.code, valid.stderr).toBe(0);
    const run = await cli(['run', 'copy.yaml', '--json'], dir);
    expect(run.code, run.stderr).toBe(0);
    const written = lines(join(dir, 'out.ndjson'));
    expect(written.map((l) => JSON.parse(l) as unknown)).toEqual(
      input.map((l) => JSON.parse(l) as unknown),
    );
  });

  it('a stage named like a dead-letter topic (<stage>.dlq) is refused', async () => {
    const dir = project({
      'p.yaml': [
        'name: dlq',
        'stages:',
        '  - { id: events, use: sequence, with: { to: 3 } }',
        '  - { id: events.dlq, use: printer, from: events }',
        '',
      ].join('\n'),
    });
    const result = await cli(['validate', 'p.yaml'], dir);
    expect(result.code).toBe(2);
    expectOneError(result.stderr, 'PIPELINE_INVALID');
    expect(result.stderr).toContain('p.yaml:4:7: Stage id "events.dlq" ends in ".dlq"');
  });

  it('--set cannot reach Object.prototype (pipeline files and prebuilt pipelines)', async () => {
    const dir = project({
      'p.yaml':
        'name: n\nstages:\n  - { id: numbers, use: sequence, with: { to: 2 } }\n  - { id: p, use: printer, from: numbers }\n',
    });
    for (const set of [
      'numbers.__proto__.polluted=1',
      'numbers.constructor.prototype.polluted=1',
    ]) {
      const result = await cli(['validate', 'p.yaml', '--set', set], dir);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--set ${set.split('=')[0]}: "`);
      expect(result.stderr).toContain('cannot be a config key');
    }
    withDependency(dir, '@codefeedr/pipelines-github');
    const prebuilt = await cli(['run', 'github-summary', '--set', '__proto__.polluted=1'], dir);
    expect(prebuilt.code).toBe(2);
    expectOneError(prebuilt.stderr, 'USAGE_INVALID');
    expect(prebuilt.stderr).toContain(
      '--set __proto__.polluted: "__proto__" cannot be a config key',
    );
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('--set on a dotted stage id works, and --set problems point at the --set', async () => {
    const dir = project();
    writeFileSync(
      join(dir, 'p.yaml'),
      [
        'name: dotted',
        'stages:',
        '  - { id: in.v2, use: sequence, with: { to: 9 } }',
        `  - { id: out, use: ndjson-file, from: in.v2, with: { path: "${join(dir, 'out.ndjson')}", mode: truncate } }`,
        '',
      ].join('\n'),
    );
    const ok = await cli(['run', 'p.yaml', '--set', 'in.v2.to=3', '--set', 'in.v2.from=1'], dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(lines(join(dir, 'out.ndjson'))).toEqual(['1', '2', '3']);
    const bad = await cli(['validate', 'p.yaml', '--set', 'in.v2.to=many'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '  --set in.v2.to: stage "in.v2" (@codefeedr/core:sequence): with.to must be number',
    );
    expect(bad.stderr).not.toContain('p.yaml:3');
    const unknown = await cli(['validate', 'p.yaml', '--set', 'in.to=1'], dir);
    expect(unknown.stderr).toContain(
      '--set in.to: no stage of this file has an id that "in.to" starts with',
    );
  });

  it('--splits runs a prebuilt pipeline in worker threads; a bad --splits, or a pipeline that cannot split, is refused', async () => {
    // Two GH Archive hour files cut from the repo's fixture: one for each split.
    const fixture = join(import.meta.dirname, '../../../test/fixtures/github/events.ndjson.gz');
    const all = gunzipSync(readFileSync(fixture)).toString('utf8').split('\n');
    const ofMinutes = (prefix: string) =>
      all.filter((l) => l.includes(`"created_at":"2015-01-01T12:${prefix}`));
    const dir = project({
      'hours/2015-01-01-12.json.gz': '',
      'p.yaml':
        'name: n\nstages:\n  - { id: numbers, use: sequence, with: { to: 2 } }\n  - { id: p, use: ndjson-file, from: numbers, with: { path: out.ndjson } }\n',
    });
    writeFileSync(join(dir, 'hours/2015-01-01-12.json.gz'), gzipSync(ofMinutes('0').join('\n')));
    writeFileSync(join(dir, 'hours/2015-01-01-13.json.gz'), gzipSync(ofMinutes('1').join('\n')));
    withDependency(dir, '@codefeedr/pipelines-github');
    const events = ofMinutes('0').length + ofMinutes('1').length;
    const ran = await cli(
      [
        '--json',
        'run',
        'github-summary',
        '--set',
        `paths=${join(dir, 'hours')}`,
        '--set',
        `output=${join(dir, 'e.ndjson')}`,
        '--splits',
        '2',
      ],
      dir,
    );
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const summary = (JSON.parse(ran.stdout) as { summary: RunSummary }).summary;
    expect(summary.metrics.stages.find((s) => s.stage === 'events')!.recordsOut).toBe(events);
    expect(
      lines(join(dir, 'e.split-0.ndjson')).length + lines(join(dir, 'e.split-1.ndjson')).length,
    ).toBe(events);

    const zero = await cli(['run', 'github-summary', '--splits', '0'], dir);
    expect(zero.code).toBe(2);
    expectOneError(zero.stderr, 'USAGE_INVALID');
    expect(zero.stderr).toContain('--splits 0 is not a whole number of at least 1');
    const file = await cli(['run', 'p.yaml', '--splits', '2'], dir);
    expect(file.code).toBe(2);
    expectOneError(file.stderr, 'RUN_OPTIONS_INVALID');
    expect(file.stderr).toContain('has no factory');
  });

  it('--cwd naming a missing folder (or a file) is a usage error', async () => {
    const dir = project();
    const missing = await cli(['--cwd', join(dir, 'nope'), 'stages'], dir);
    expect(missing.code).toBe(2);
    expectOneError(missing.stderr, 'USAGE_INVALID');
    expect(missing.stderr).toContain('there is no folder');
    const file = await cli(['-C', 'package.json', 'stages', '--json'], dir);
    expect(file.code).toBe(2);
    expect(file.json()).toMatchObject({ ok: false, error: { code: 'USAGE_INVALID' } });
  });

  it('help <command> exits 0', async () => {
    const result = await cli(['help', 'run'], project());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: codefeedr run');
  });

  it('run <name> with neither a file nor a prebuilt pipeline says both, and names the likely file', async () => {
    const dir = project({
      'pipeline.yaml': 'name: n\nstages:\n  - { id: n, use: sequence, with: { to: 1 } }\n',
    });
    const result = await cli(['run', 'pipeline'], dir);
    expect(result.code).toBe(2);
    expectOneError(result.stderr, 'PIPELINE_NOT_FOUND');
    expect(result.stderr).toContain('"pipeline" is neither a file');
    expect(result.stderr).toContain('Did you mean the file pipeline.yaml');
  });

  it('file-system problems name the path and its role', async () => {
    const dir = project({ 'folder.yaml/x': '', 'a-file': '' });
    const isDir = await cli(['validate', 'folder.yaml'], dir);
    expect(isDir.code).toBe(2);
    expect(isDir.stderr).toContain(
      'Pipeline file folder.yaml has 1 problem:\n  this is a folder, not a pipeline file',
    );
    const notDir = await cli(['validate', 'a-file/p.yaml'], dir);
    expect(notDir.code).toBe(2);
    expect(notDir.stderr).toContain('a part of the path is a file');
    const long = await cli(['validate', `${'x'.repeat(300)}.yaml`], dir);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain('the path is too long');
    writeFileSync(
      join(dir, 'p.yaml'),
      'name: n\nstages:\n  - { id: n, use: sequence, with: { to: 1 } }\n  - { id: p, use: printer, from: n }\n',
    );
    writeFileSync(
      join(dir, 'out.yaml'),
      `name: o\nstages:\n  - { id: n, use: sequence, with: { to: 1 } }\n  - { id: out, use: ndjson-file, from: n, with: { path: "${join(dir, 'folder.yaml')}" } }\n`,
    );
    const output = await cli(['run', 'out.yaml'], dir);
    expect(output.code).toBe(1);
    expectOneError(output.stderr, 'RUN_FAILED');
    expect(output.stderr).toContain(
      `stage "out" (with.path): ${join(dir, 'folder.yaml')} is a folder, where a file is needed (EISDIR)`,
    );
    const checkpoint = await cli(['run', 'p.yaml', '--checkpoint-dir', 'a-file'], dir);
    expect(checkpoint.code).toBe(2);
    expectOneError(checkpoint.stderr, 'USAGE_INVALID');
    expect(checkpoint.stderr).toContain('--checkpoint-dir a-file:');
    expect(checkpoint.stderr).toContain('is a file; give a folder');
  });

  it('a malformed project package.json is an error, not an empty project', async () => {
    const dir = project();
    writeFileSync(join(dir, 'package.json'), '{ "name": "broken", }');
    const result = await cli(['stages'], dir);
    expect(result.code).toBe(2);
    expectOneError(result.stderr, 'PACKAGE_JSON_INVALID');
    expect(result.stderr).toContain(join(dir, 'package.json'));
  });

  it('environment values are typed by the field schema; ${VAR:-default}; one error for an unquoted ${VAR}', async () => {
    const dir = project({
      'p.yaml': [
        'name: env',
        'stages:',
        '  - { id: n, use: sequence, with: { to: "${COUNT:-2}" } }',
        '  - { id: o, use: ndjson-file, from: n, with: { path: "${OUT}", mode: truncate } }',
        '',
      ].join('\n'),
      'unquoted.yaml': [
        'name: env',
        'stages:',
        '  - { id: n, use: sequence, with: { to: ${COUNT} } }',
        '  - { id: o, use: printer, from: n }',
        '',
      ].join('\n'),
    });
    const out = join(dir, 'out.ndjson');
    const counted = await cli(['run', 'p.yaml'], dir, { COUNT: '7', OUT: out });
    expect(counted.code, counted.stderr).toBe(0);
    expect(lines(out)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    const defaulted = await cli(['run', 'p.yaml'], dir, { OUT: out });
    expect(defaulted.code, defaulted.stderr).toBe(0);
    expect(lines(out)).toEqual(['0', '1', '2']);
    const unquoted = await cli(['validate', 'unquoted.yaml'], dir, { COUNT: '7' });
    expect(unquoted.code).toBe(2);
    expect(unquoted.stderr).toContain('has 1 problem:');
    expect(unquoted.stderr).toContain('unquoted.yaml:3:41: ${COUNT} inside a flow mapping');
  });

  it('validate and graph take prebuilt pipeline names; graph needs no ${VAR}', async () => {
    const dir = project({
      'p.yaml': [
        'name: secretive',
        'stages:',
        '  - { id: n, use: sequence, with: { to: "${COUNT}" } }',
        '  - { id: o, use: ndjson-file, from: n, with: { path: "${OUT_PATH}" } }',
        '',
      ].join('\n'),
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { '@codefeedr/pipelines-github': '*' } }),
    );
    const graph = await cli(['graph', 'p.yaml'], dir);
    expect(graph.code, graph.stderr).toBe(0);
    expect(graph.stdout).toContain('n ─▶ o');
    const validate = await cli(['validate', 'p.yaml'], dir);
    expect(validate.code).toBe(2);
    expect(validate.stderr).toContain('environment variable COUNT is not set');
    const prebuilt = await cli(['validate', 'github-summary', '--json'], dir);
    expect(prebuilt.code, prebuilt.stdout).toBe(0);
    expect(prebuilt.json()).toMatchObject({
      ok: true,
      valid: true,
      pipeline: { name: 'github-summary' },
    });
    const drawn = await cli(['graph', 'github-summary', '--format', 'mermaid'], dir);
    expect(drawn.code, drawn.stderr).toBe(0);
    expect(drawn.stdout).toMatch(/^flowchart LR\n/);
  });

  it('validate checks many files at once and warns about a pipeline that keeps nothing', async () => {
    const dir = project({
      'a.yaml':
        'name: a\nstages:\n  - { id: n, use: sequence, with: { to: 1 } }\n  - { id: p, use: printer, from: n }\n',
      'nosink.yaml': 'name: nosink\nstages:\n  - { id: n, use: sequence, with: { to: 1 } }\n',
      'bad.yaml': 'name: bad\nstages:\n  - { id: n, use: sequens }\n',
    });
    const good = await cli(['validate', 'a.yaml', 'nosink.yaml'], dir);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout.split('\n').filter((l) => l.startsWith('✓'))).toHaveLength(2);
    expect(good.stderr).toContain('warning nosink.yaml: pipeline "nosink" has no output stage');
    const mixed = await cli(['validate', 'a.yaml', 'bad.yaml', 'nosink.yaml', '--json'], dir);
    expect(mixed.code).toBe(2);
    const results = mixed.json()['results'] as {
      file: string;
      valid: boolean;
      warnings: string[];
    }[];
    expect(results.map((r) => [r.file, r.valid, r.warnings.length])).toEqual([
      ['a.yaml', true, 0],
      ['bad.yaml', false, 0],
      ['nosink.yaml', true, 1],
    ]);
  });

  it('run --json with a printer is refused: stdout holds one JSON document', async () => {
    const dir = project({
      'p.yaml':
        'name: n\nstages:\n  - { id: n, use: sequence, with: { to: 3 } }\n  - { id: print, use: printer, from: n }\n',
    });
    const result = await cli(['run', 'p.yaml', '--json'], dir);
    expect(result.code).toBe(2);
    expect(result.json()).toMatchObject({ ok: false, error: { code: 'USAGE_INVALID' } });
    expect((result.json()['error'] as { message: string }).message).toContain(
      'printer stage "print"',
    );
  });

  it('log lines take one format per stream: human beside the summary, JSON beside --json', async () => {
    const dir = project({
      'p.yaml':
        'name: f\nstages:\n  - { id: in, use: ndjson-file, with: { path: /nonexistent/missing.ndjson } }\n  - { id: out, use: ndjson-file, from: in, with: { path: /dev/null } }\n',
    });
    // --metrics-port: the run logs where its endpoint listens, in the stream's format.
    const human = await cli(['run', 'p.yaml', '--metrics-port', '0'], dir);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain('metrics endpoint listening');
    expect(human.stderr).not.toMatch(/^\{/m);
    const json = await cli(['run', 'p.yaml', '--json', '--metrics-port', '0'], dir);
    expect(json.code).toBe(1);
    const stderrLines = json.stderr.split('\n').filter((l) => l !== '');
    expect(stderrLines.length).toBeGreaterThan(0);
    for (const line of stderrLines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(json.json()).toMatchObject({ ok: false, error: { code: 'STAGE_FAILED' } });
  });

  it('a failed run says so once: no "pipeline failed" log line repeating the error', async () => {
    const dir = project({
      'p.yaml':
        'name: f\nstages:\n  - { id: in, use: ndjson-file, with: { path: /nonexistent/missing.ndjson } }\n  - { id: out, use: ndjson-file, from: in, with: { path: /dev/null } }\n',
    });
    for (const flags of [[], ['--json'], ['--verbose']]) {
      const result = await cli(['run', 'p.yaml', ...flags], dir);
      expect(result.code).toBe(1);
      const output = result.stdout + result.stderr;
      expect(output).not.toContain('pipeline failed');
      // The error's message, once: in the error line, or in the --json document (--verbose
      // adds the stack of its cause, which starts with the cause's own message).
      if (!flags.includes('--verbose'))
        expect(output.split('Cannot read /nonexistent/missing.ndjson')).toHaveLength(2);
    }
  });

  it('an ndjson-file output to /dev/null or a FIFO works (no fsync of a device or pipe)', async () => {
    const dir = project();
    const fifo = join(dir, 'lines.fifo');
    execFileSync('mkfifo', [fifo]);
    const received = new Promise<string>((resolve, reject) => {
      let text = '';
      createReadStream(fifo, 'utf8')
        .on('data', (chunk) => (text += String(chunk)))
        .on('end', () => resolve(text))
        .on('error', reject);
    });
    for (const path of ['/dev/null', fifo]) {
      writeFileSync(
        join(dir, 'p.yaml'),
        `name: devices\nstages:\n  - { id: n, use: sequence, with: { to: 999 } }\n  - { id: out, use: ndjson-file, from: n, with: { path: ${path} } }\n`,
      );
      const result = await cli(['run', 'p.yaml'], dir);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/EINVAL|WARN|error/);
      expect(result.stderr).toMatch(/^out\s+output\s+1000\s+1000/m);
    }
    expect((await received).split('\n').filter((l) => l !== '')).toEqual(
      Array.from({ length: 1000 }, (_, i) => String(i)),
    );
  });

  it('a GitHub API that refuses connections fails the stage at once, named, not as HTTP 500 retried forever', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const dir = project({
      'p.yaml': [
        'name: gh',
        'stages:',
        `  - { id: events, use: '@codefeedr/plugin-github:events', with: { baseUrl: '${url}' } }`,
        '  - { id: out, use: ndjson-file, from: events, with: { path: /dev/null } }',
        '',
      ].join('\n'),
    });
    withDependency(dir, '@codefeedr/plugin-github');
    const started = Date.now();
    const result = await cli(['run', 'p.yaml'], dir);
    expect(result.code, result.stderr).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expectOneError(result.stderr, 'STAGE_FAILED');
    expect(result.stderr).toContain(
      `error Stage "events" failed: source.poll threw an error that a retry cannot fix (Cannot connect to GitHub at ${url}/events: nothing accepts connections there (ECONNREFUSED).`,
    );
    expect(result.stderr).not.toMatch(/HTTP 500|status=500/);
  });

  it('a thousand broken `from`s print kilobytes, not megabytes, and one problem each', async () => {
    const lines = ['name: many', 'stages:', '  - { id: n, use: sequence, with: { to: 1 } }'];
    for (let i = 0; i < 1000; i++) lines.push(`  - { id: out${i}, use: printer, from: ghost${i} }`);
    const dir = project({ 'p.yaml': `${lines.join('\n')}\n` });
    const human = await cli(['validate', 'p.yaml'], dir);
    expect(human.code).toBe(2);
    expectOneError(human.stderr, 'PIPELINE_INVALID');
    expect(human.stderr).toContain('has 1000 problems');
    expect(human.stderr.length).toBeLessThan(20_000);
    const json = await cli(['validate', 'p.yaml', '--json'], dir);
    const problems = (json.json()['error'] as { problems: { code: string; message: string }[] })
      .problems;
    expect(problems.map((p) => p.code)).toEqual(Array<string>(1000).fill('UNKNOWN_STAGE'));
    expect(Math.max(...problems.map((p) => p.message.length))).toBeLessThan(200);
    expect(json.stdout.length).toBeLessThan(500_000);
  });
});
