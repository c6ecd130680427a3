import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from './program.js';

const TMP = join(import.meta.dirname, '..', '..', '..', '.tmp');

function project(files: Record<string, string> = {}): string {
  mkdirSync(TMP, { recursive: true });
  const dir = mkdtempSync(join(TMP, 'cli-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'cli-fixture', version: '1.0.0' }),
  );
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

const numbers = (to: number, out: string) =>
  [
    'name: numbers',
    'stages:',
    `  - { id: numbers, use: sequence, with: { from: 1, to: ${to}, timestamps: value } }`,
    '  - { id: double, use: printer, from: numbers, with: {} }'
      .replace('printer', 'ndjson-file')
      .replace('{}', `{ path: ${out}, mode: truncate }`),
    '',
  ].join('\n');

/** No stack frames, exactly one `error` line. */
function expectOneError(stderr: string, code: string): void {
  expect(stderr.split('\n').filter((l) => l.startsWith('error '))).toHaveLength(1);
  expect(stderr).toContain(`[${code}]`);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('codefeedr', () => {
  it('--help lists every command and exits 0', async () => {
    const result = await cli(['--help'], project());
    expect(result.code).toBe(0);
    for (const command of ['run', 'validate', 'graph', 'stages', 'plugins', 'new', 'manifest']) {
      expect(result.stdout).toContain(command);
    }
    expect(result.stdout).toContain('Exit codes');
  });

  it('an unknown command or option is a usage error: exit 2, one line', async () => {
    const result = await cli(['frobnicate'], project());
    expect(result.code).toBe(2);
    expectOneError(result.stderr, 'USAGE_INVALID');
    const group = await cli(['plugins'], project());
    expect(group.code).toBe(2);
    expect(group.stderr).toContain('Usage: codefeedr plugins');
    const json = await cli(['validate', '--json'], project());
    expect(json.code).toBe(2);
    expect(json.json()).toMatchObject({ ok: false, error: { code: 'USAGE_INVALID' } });
  });

  it('run: executes a pipeline file and reports a summary; --set overrides config', async () => {
    const dir = project();
    writeFileSync(join(dir, 'p.yaml'), numbers(6, join(dir, 'out.ndjson')));
    const result = await cli(['run', 'p.yaml', '--json'], dir);
    expect(result.code, result.stderr).toBe(0);
    const summary = result.json()['summary'] as {
      status: string;
      metrics: { stages: { stage: string; recordsIn: number }[] };
    };
    expect(summary.status).toBe('finished');
    expect(summary.metrics.stages.find((s) => s.stage === 'double')?.recordsIn).toBe(6);
    expect(readFileSync(join(dir, 'out.ndjson'), 'utf8')).toBe(
      [1, 2, 3, 4, 5, 6].map((n) => `${n}\n`).join(''),
    );

    const overridden = await cli(
      ['run', 'p.yaml', '--set', 'numbers.to=3', '--mode', 'local'],
      dir,
    );
    expect(overridden.code, overridden.stderr).toBe(0);
    expect(readFileSync(join(dir, 'out.ndjson'), 'utf8')).toBe('1\n2\n3\n');
    expect(overridden.stderr).toContain('finished pipeline "numbers" (local)');
  });

  it('run --stage: a worker needs a shared buffer; an unknown stage is exit 2', async () => {
    const dir = project();
    writeFileSync(join(dir, 'p.yaml'), numbers(5, join(dir, 'out.ndjson')));
    // On the in-memory buffer a worker's records would die with it: refused, saying what to do.
    // (Workers over Kafka: test/scale-out.test.ts runs `codefeedr run --stage` workers.)
    const lonely = await cli(['run', 'p.yaml', '--stage', 'numbers'], dir);
    expect(lonely.code).toBe(2);
    expectOneError(lonely.stderr, 'RUN_OPTIONS_INVALID');
    expect(lonely.stderr).toContain('shared buffer');
    expect(existsSync(join(dir, 'out.ndjson'))).toBe(false);
    const instanceAlone = await cli(['run', 'p.yaml', '--instance', 'w2'], dir);
    expect(instanceAlone.code).toBe(2);
    expectOneError(instanceAlone.stderr, 'USAGE_INVALID');
    const unknown = await cli(['run', 'p.yaml', '--stage', 'nope'], dir);
    expect(unknown.code).toBe(2);
    expectOneError(unknown.stderr, 'UNKNOWN_WORKER_STAGE');
    expect((await cli(['run', 'p.yaml', '--stage', 'numbers', '--mode', 'local'], dir)).code).toBe(
      2,
    );
  });

  it('run: a failing stage is a runtime failure (exit 1) without a stack trace', async () => {
    const dir = project({
      'p.yaml':
        'name: f\nstages:\n  - { id: in, use: ndjson-file, with: { path: does-not-exist.ndjson } }\n  - { id: out, use: printer, from: in }\n',
    });
    const result = await cli(['run', 'p.yaml'], dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error .*\[STAGE_FAILED\]$/m);
    // A missing file is not worth retrying: the stage fails at once, saying so, without a stack trace.
    expect(result.stderr).toContain('a retry cannot fix');
    expect(result.stderr).not.toContain('retrying');
    expect(result.stderr).not.toMatch(/\bat .+\.ts:\d+:\d+/);
    const verbose = await cli(['run', 'p.yaml', '--verbose'], dir);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(/\bat .+\.ts:\d+:\d+/);
  });

  it('run: a prebuilt pipeline from a plugin, configured with --set', async () => {
    const dir = project({
      'node_modules/codefeedr-plugin-counting/index.js': [
        "import { PipelineBuilder, sequenceInput, ndjsonFileOutput } from '@codefeedr/core';",
        'export const countingPipeline = {',
        "  kind: 'pipeline', name: 'counting', description: 'Counts to `to` into `path`.',",
        "  create: (config = {}) => new PipelineBuilder('counting')",
        "    .append(sequenceInput.create('n', { from: 1, to: config.to ?? 3, timestamps: 'value' }))",
        "    .append(ndjsonFileOutput.create('out', { path: config.path, mode: 'truncate' })),",
        '};',
        '',
      ].join('\n'),
      'node_modules/codefeedr-plugin-counting/package.json': JSON.stringify({
        name: 'codefeedr-plugin-counting',
        version: '1.0.0',
        type: 'module',
        main: 'index.js',
        keywords: ['codefeedr-plugin'],
        codefeedr: {
          apiVersion: 1,
          components: [
            {
              name: 'counting',
              kind: 'pipeline',
              export: 'countingPipeline',
              description: 'Counts.',
              configSchema: { type: 'object' },
            },
          ],
        },
      }),
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { 'codefeedr-plugin-counting': '1.0.0' } }),
    );
    const out = join(dir, 'counted.ndjson');
    const result = await cli(['run', 'counting', '--set', 'to=4', '--set', `path=${out}`], dir);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('1\n2\n3\n4\n');
    const notPipeline = await cli(['run', 'printer'], dir);
    expect(notPipeline.code).toBe(2);
  });

  it('validate: valid → exit 0 with the DAG; invalid → exit 2 with every problem located', async () => {
    const dir = project({
      'ok.yaml': numbers(3, 'out.ndjson'),
      'bad.yaml':
        'name: bad\nstages:\n  - { id: n, use: sequence, with: { to: nope } }\n  - { id: p, use: printr, from: n }\n',
    });
    const ok = await cli(['validate', 'ok.yaml', '--json'], dir);
    expect(ok.code).toBe(0);
    expect(ok.json()).toMatchObject({
      ok: true,
      valid: true,
      pipeline: { name: 'numbers', edges: [{ from: 'numbers', to: 'double', inputIndex: 0 }] },
    });
    const bad = await cli(['validate', 'bad.yaml'], dir);
    expect(bad.code).toBe(2);
    expectOneError(bad.stderr, 'PIPELINE_INVALID');
    expect(bad.stderr).toContain(
      'bad.yaml:3:41: stage "n" (@codefeedr/core:sequence): with.to must be number',
    );
    expect(bad.stderr).toContain('bad.yaml:4:19: No component named "printr"');
    const badJson = await cli(['validate', 'bad.yaml', '--json'], dir);
    const error = badJson.json()['error'] as {
      code: string;
      problems: { code: string; position: { line: number } }[];
    };
    expect(error.code).toBe('PIPELINE_INVALID');
    expect(error.problems.map((p) => [p.code, p.position.line])).toEqual([
      ['CONFIG_INVALID', 3],
      ['COMPONENT_NOT_FOUND', 4],
    ]);
  });

  it('validate: a missing ${VAR} names the variable and line; a set one never shows up', async () => {
    const dir = project();
    const lines = [
      'name: e',
      'stages:',
      '  - { id: n, use: sequence, with: { to: 2 } }',
      `  - { id: o, use: ndjson-file, from: n, with: { path: "${dir}/x-\${SECRET_PART}.ndjson" } }`,
    ];
    writeFileSync(join(dir, 'env.yaml'), `${lines.join('\n')}\n`);
    const missing = await cli(['validate', 'env.yaml'], dir);
    expect(missing.code).toBe(2);
    const column = lines[3]!.indexOf('"') + 1;
    expect(missing.stderr).toContain(
      `env.yaml:4:${column}: environment variable SECRET_PART is not set`,
    );
    const secret = `s3cr3t-${Date.now()}`;
    const run = await cli(['run', 'env.yaml', '--json'], dir, { SECRET_PART: secret });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(join(dir, `x-${secret}.ndjson`))).toBe(true);
    expect(run.stdout + run.stderr).not.toContain(secret);
  });

  it('config: the configuration a run would use, --set applied and typed, every default written out', async () => {
    const dir = project({ 'p.yaml': numbers(6, 'out.ndjson') });
    const result = await cli(['config', 'p.yaml', '--set', 'numbers.to=3', '--json'], dir);
    expect(result.code, result.stderr).toBe(0);
    const config = result.json()['config'] as {
      deadLetter: { to: string; retries: number };
      stages: { id: string; from: string[]; with: Record<string, unknown> }[];
    };
    expect(config.deadLetter.to).toBe('auto');
    expect(typeof config.deadLetter.retries).toBe('number');
    expect(config.stages.map((s) => [s.id, s.from])).toEqual([
      ['numbers', []],
      ['double', ['numbers']],
    ]);
    expect(config.stages[0]!.with).toMatchObject({ from: 1, to: 3, timestamps: 'value' });
    // Defaults the file never wrote: the output's format, the sequence's other settings.
    expect(config.stages[1]!.with).toEqual({
      path: 'out.ndjson',
      mode: 'truncate',
      format: 'value',
    });
    expect(Object.keys(config.stages[0]!.with).length).toBeGreaterThan(3);
    const human = await cli(['config', 'p.yaml'], dir);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('format: value');
  });

  it('graph: text, mermaid and dot from manifests', async () => {
    const dir = project({ 'p.yaml': numbers(3, 'out.ndjson') });
    const text = await cli(['graph', 'p.yaml'], dir);
    expect(text.stdout).toContain('numbers ─▶ double  [input 1: codefeedr.SequenceNumber@1]');
    const mermaid = await cli(['graph', 'p.yaml', '--format', 'mermaid'], dir);
    expect(mermaid.stdout).toMatch(/^flowchart LR\n/);
    expect(mermaid.stdout).toContain('s_numbers -->|"codefeedr.SequenceNumber@1"| s_double');
    const dot = await cli(['graph', 'p.yaml', '--format', 'dot', '--json'], dir);
    const graph = dot.json() as { graph: { edges: unknown[] }; rendered: string };
    expect(graph.graph.edges).toEqual([
      { from: 'numbers', to: 'double', inputIndex: 0, type: 'codefeedr.SequenceNumber@1' },
    ]);
    expect(graph.rendered).toContain('"numbers" -> "double" [label="codefeedr.SequenceNumber@1"];');
    const wrongFormat = await cli(['graph', 'p.yaml', '--format', 'png'], dir);
    expect(wrongFormat.code).toBe(2);
  });

  it('stages and plugins list/info: built-ins, plugins, and broken plugins flagged with exit 2', async () => {
    const dir = project({
      'node_modules/codefeedr-plugin-good/package.json': JSON.stringify({
        name: 'codefeedr-plugin-good',
        version: '2.0.0',
        keywords: ['codefeedr-plugin'],
        codefeedr: {
          apiVersion: 1,
          components: [
            {
              name: 'tick',
              kind: 'input',
              export: 'tick',
              description: 'Ticks.',
              configSchema: {
                type: 'object',
                properties: { every: { type: 'integer' } },
                required: ['every'],
              },
              outputType: 'x.Tick@1',
            },
          ],
        },
      }),
      'node_modules/codefeedr-plugin-bad/package.json': JSON.stringify({
        name: 'codefeedr-plugin-bad',
        version: '1.0.0',
        keywords: ['codefeedr-plugin'],
      }),
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'x',
        dependencies: { 'codefeedr-plugin-good': '2.0.0', 'codefeedr-plugin-bad': '1.0.0' },
      }),
    );
    const stages = await cli(['stages', '--json'], dir);
    const ids = (stages.json()['components'] as { id: string }[]).map((c) => c.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        '@codefeedr/core:sequence',
        '@codefeedr/core:printer',
        'codefeedr-plugin-good:tick',
      ]),
    );
    const inputsOnly = await cli(['stages', '--kind', 'input', '--json'], dir);
    expect(
      (inputsOnly.json()['components'] as { kind: string }[]).every((c) => c.kind === 'input'),
    ).toBe(true);

    const list = await cli(['plugins', 'list', '--json'], dir);
    expect(list.code).toBe(2);
    const plugins = list.json()['plugins'] as {
      name: string;
      ok: boolean;
      problem: { code: string } | null;
    }[];
    expect(plugins.map((p) => [p.name, p.ok, p.problem?.code ?? null])).toEqual([
      ['codefeedr-plugin-good', true, null],
      ['codefeedr-plugin-bad', false, 'MANIFEST_INVALID'],
    ]);
    const info = await cli(['plugins', 'info', 'good'], dir);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain('with.every (required): integer');
    const builtin = await cli(['plugins', 'info', 'core', '--json'], dir);
    expect((builtin.json()['plugin'] as { name: string }).name).toBe('@codefeedr/core');
    const none = await cli(['plugins', 'info', 'nope'], dir);
    expect(none.code).toBe(2);
    expectOneError(none.stderr, 'PLUGIN_NOT_INSTALLED');
  });

  it('plugins search: queries the registry and answers JSON', async () => {
    const registry = process.env['CODEFEEDR_NPM_REGISTRY'];
    if (!registry)
      throw new Error(
        'CODEFEEDR_NPM_REGISTRY is not set: run through vitest, whose globalSetup starts Verdaccio',
      );
    const result = await cli(
      ['plugins', 'search', `no-such-plugin-${Date.now()}`, '--registry', registry, '--json'],
      project(),
    );
    expect(result.code, result.stdout).toBe(0);
    expect(result.json()).toEqual({ ok: true, registry, results: [] });
    const down = await cli(
      ['plugins', 'search', 'x', '--registry', 'http://127.0.0.1:9/'],
      project(),
    );
    expect(down.code).toBe(1);
    expectOneError(down.stderr, 'REGISTRY_SEARCH_FAILED');
  });

  it('new plugin: standalone folder, or plugins/<name> in a monorepo with a root changeset', async () => {
    const dir = project();
    const standalone = await cli(['new', 'plugin', '@acme/hello', '--json'], dir);
    expect(standalone.code, standalone.stdout).toBe(0);
    expect(standalone.json()).toMatchObject({
      packageName: '@acme/codefeedr-plugin-hello',
      mode: 'standalone',
      dir: join(dir, 'hello'),
    });
    const pkg = JSON.parse(readFileSync(join(dir, 'hello', 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(pkg['name']).toBe('@acme/codefeedr-plugin-hello');
    expect(pkg['private']).toBeUndefined();
    expect(existsSync(join(dir, 'hello', '.gitignore'))).toBe(true);
    expect(existsSync(join(dir, 'hello', 'node_modules'))).toBe(false);
    expect(
      readFileSync(join(dir, 'hello', '.changeset', 'hello-initial-release.md'), 'utf8'),
    ).toContain("'@acme/codefeedr-plugin-hello': minor");
    const again = await cli(['new', 'plugin', '@acme/hello'], dir);
    expect(again.code).toBe(2);
    expectOneError(again.stderr, 'SCAFFOLD_TARGET_EXISTS');
    expect((await cli(['new', 'plugin', 'Bad Name'], dir)).code).toBe(2);

    const mono = project({
      'packages/core/package.json': JSON.stringify({ name: '@codefeedr/core', version: '3.4.5' }),
    });
    writeFileSync(
      join(mono, 'package.json'),
      JSON.stringify({ name: 'mono', private: true, workspaces: ['packages/*', 'plugins/*'] }),
    );
    const workspace = await cli(['new', 'plugin', 'acme-hello'], mono);
    expect(workspace.code, workspace.stderr).toBe(0);
    const created = JSON.parse(
      readFileSync(join(mono, 'plugins', 'acme-hello', 'package.json'), 'utf8'),
    ) as { name: string; peerDependencies: Record<string, string> };
    expect(created.name).toBe('codefeedr-plugin-acme-hello');
    expect(created.peerDependencies['@codefeedr/core']).toBe('^3.4.5');
    expect(existsSync(join(mono, '.changeset', 'acme-hello-initial-release.md'))).toBe(true);
  });

  it('manifest: writes the manifest derived from the built module, --check detects drift', async () => {
    const dir = project({
      'index.js':
        "export const beep = { kind: 'output', name: 'beep', description: 'Beeps.', inputTypes: [{ id: 'any@1', jsonSchema: () => ({}) }], create() {} };\n",
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'codefeedr-plugin-beep',
        version: '1.0.0',
        type: 'module',
        main: 'index.js',
      }),
    );
    const check = await cli(['manifest', '--check'], dir);
    expect(check.code).toBe(2);
    expectOneError(check.stderr, 'MANIFEST_OUT_OF_SYNC');
    expect((await cli(['manifest'], dir)).code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      keywords: string[];
      codefeedr: unknown;
    };
    expect(pkg.keywords).toContain('codefeedr-plugin');
    expect(pkg.codefeedr).toEqual({
      apiVersion: 1,
      components: [
        {
          name: 'beep',
          kind: 'output',
          export: 'beep',
          description: 'Beeps.',
          configSchema: { type: 'object' },
          inputTypes: ['any@1'],
          messageTypes: { 'any@1': {} },
        },
      ],
    });
    expect((await cli(['manifest', '--check'], dir)).code).toBe(0);
  });
});
