// The plugin ecosystem end to end, against the harness's real Verdaccio and real npm:
// release every workspace package → install the CLI and a plugin in a fresh folder →
// scaffold, build, test and publish a new plugin → find, add and run it from another
// fresh folder → bad inputs each fail with one clear error and a non-zero exit.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNpmUser, writeNpmrc, type NpmUser } from './services/verdaccio.ts';
import { dependencyClosure, seedRegistry } from './e2e/npm-seed.ts';
import { assertSucceeded, npmEnv, REPO, runCommand, type CommandResult } from './e2e/npm-folder.ts';
import { buildWorkspace, releaseSnapshot } from './e2e/workspace-release.ts';

const registry = process.env['CODEFEEDR_NPM_REGISTRY'];
const PUBLIC_REGISTRY = 'https://registry.npmjs.org/';
const stamp = Math.floor(Date.now() / 1000);
const root = mkdtempSync(join(tmpdir(), 'cf-e2e-plugin-flow-'));
let user: NpmUser;
let versions: Map<string, string>;

/** A fresh folder outside the repo with its own .npmrc pointing at Verdaccio. */
function freshFolder(name: string): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const npmrc = writeNpmrc(dir, user.token);
  return { dir, env: npmEnv(npmrc) };
}

const npm = (
  args: string[],
  folder: { dir: string; env: NodeJS.ProcessEnv },
  timeoutMs = 180_000,
) => runCommand('npm', args, { cwd: folder.dir, env: folder.env, timeoutMs });
const codefeedr = (args: string[], folder: { dir: string; env: NodeJS.ProcessEnv }) =>
  runCommand('npx', ['--no-install', 'codefeedr', ...args], {
    cwd: folder.dir,
    env: folder.env,
    timeoutMs: 60_000,
  });

/** One clear error: a single `error …[CODE]` line, no stack frames, non-zero exit. */
function expectOneClearError(result: CommandResult, code: string, exitCode = 2): void {
  expect(result.code, `${result.command}\n${result.stderr}`).toBe(exitCode);
  const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('error '));
  expect(errorLines, result.stderr).toHaveLength(1);
  expect(result.stderr).toContain(`[${code}]`);
  expect(result.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
}

/** Publishes a tiny hand-made package (for the bad-plugin cases). */
async function publishPackage(name: string, pkg: Record<string, unknown>): Promise<void> {
  const folder = freshFolder(`pkg-${name}`);
  writeFileSync(
    join(folder.dir, 'package.json'),
    JSON.stringify(
      { name, version: `1.0.${stamp}`, type: 'module', main: 'index.js', ...pkg },
      null,
      2,
    ),
  );
  writeFileSync(join(folder.dir, 'index.js'), 'export {};\n');
  assertSucceeded(await npm(['publish'], folder));
}

beforeAll(async () => {
  if (!registry)
    throw new Error(
      'CODEFEEDR_NPM_REGISTRY is not set: run through vitest (its globalSetup starts Verdaccio) or `npm run services:up`.',
    );
  const ping = await fetch(new URL('/-/ping', registry)).catch((e: Error) => e);
  if (ping instanceof Error || !ping.ok)
    throw new Error(
      `Verdaccio at ${registry} does not answer: ${ping instanceof Error ? ping.message : ping.status}`,
    );
  user = await createNpmUser();
  const releaseFolder = freshFolder('release');
  await buildWorkspace(releaseFolder.env);
  // Third-party dependencies of what the flow installs, from the repo's node_modules.
  const closure = [
    ...dependencyClosure(
      Object.keys(readJson(join(REPO, 'packages', 'cli', 'package.json')).dependencies ?? {}),
      join(REPO, 'packages', 'cli'),
    ),
    ...dependencyClosure(
      Object.keys(readJson(join(REPO, 'packages', 'registry', 'package.json')).dependencies ?? {}),
      join(REPO, 'packages', 'registry'),
    ),
    ...dependencyClosure(
      Object.keys(readJson(join(REPO, 'packages', 'core', 'package.json')).dependencies ?? {}),
      join(REPO, 'packages', 'core'),
    ),
    ...dependencyClosure(
      Object.keys(readJson(join(REPO, 'plugins', 'redis', 'package.json')).dependencies ?? {}),
      join(REPO, 'plugins', 'redis'),
    ),
  ];
  await seedRegistry(registry, user.token, closure);
  versions = await releaseSnapshot(join(root, 'release'), releaseFolder.env, stamp);
}, 900_000);

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function readJson(file: string): {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
} {
  return JSON.parse(readFileSync(file, 'utf8')) as never;
}

describe('plugin flow through a real npm registry', () => {
  let firstFolder: { dir: string; env: NodeJS.ProcessEnv };
  let secondFolder: { dir: string; env: NodeJS.ProcessEnv };

  it('1. published every publishable workspace package', async () => {
    expect(versions.get('@codefeedr/core')).toBe(`0.1.${stamp}`);
    for (const [name, version] of versions) {
      const response = await fetch(new URL(name.replace('/', '%2f'), registry));
      const packument = (await response.json()) as { versions: Record<string, unknown> };
      expect(Object.keys(packument.versions), name).toContain(version);
    }
  });

  it('2. installs the CLI and a plugin in a fresh folder; plugins list shows its components', async () => {
    firstFolder = freshFolder('first');
    assertSucceeded(await npm(['init', '-y'], firstFolder));
    assertSucceeded(
      await npm(['install', '@codefeedr/cli', '@codefeedr/plugin-redis'], firstFolder),
    );
    const list = assertSucceeded(await codefeedr(['plugins', 'list', '--json'], firstFolder));
    const plugins = (
      JSON.parse(list.stdout) as {
        plugins: { name: string; version: string; components: { id: string }[] }[];
      }
    ).plugins;
    const redis = plugins.find((p) => p.name === '@codefeedr/plugin-redis');
    expect(redis?.version).toBe(versions.get('@codefeedr/plugin-redis'));
    const expected = (
      JSON.parse(readFileSync(join(REPO, 'plugins', 'redis', 'package.json'), 'utf8')) as {
        codefeedr: { components: { name: string }[] };
      }
    ).codefeedr.components.map((c) => `@codefeedr/plugin-redis:${c.name}`);
    expect(redis?.components.map((c) => c.id)).toEqual(expected);
    const text = assertSucceeded(await codefeedr(['plugins', 'list'], firstFolder));
    for (const id of expected) expect(text.stdout).toContain(id);
  }, 180000);

  it('3. scaffolds acme-hello, which builds, passes its tests and publishes', async () => {
    assertSucceeded(await codefeedr(['new', 'plugin', 'acme-hello'], firstFolder));
    // Verdaccio here takes no tarball over 10 MB (rolldown's native binding, under vitest,
    // is bigger), so the plugin's build tooling comes from the public registry npm uses by
    // default; @codefeedr/* still come from Verdaccio, and the plugin is published there.
    const pluginNpmrc = join(root, 'plugin.npmrc');
    writeFileSync(
      pluginNpmrc,
      [
        `registry=${PUBLIC_REGISTRY}`,
        `@codefeedr:registry=${registry}`,
        `//${new URL(registry!).host}/:_authToken=${user.token}`,
        'audit=false',
        'fund=false',
        'update-notifier=false',
        '',
      ].join('\n'),
    );
    const plugin = { dir: join(firstFolder.dir, 'acme-hello'), env: npmEnv(pluginNpmrc) };
    const pkg = JSON.parse(readFileSync(join(plugin.dir, 'package.json'), 'utf8')) as {
      name: string;
    };
    expect(pkg.name).toBe('codefeedr-plugin-acme-hello');
    assertSucceeded(await npm(['install'], plugin));
    assertSucceeded(await npm(['run', 'build'], plugin));
    const test = assertSucceeded(await npm(['test'], plugin));
    expect(test.stdout).toMatch(/Tests\s+\d+ passed/);
    assertSucceeded(await npm(['version', `0.1.${stamp}`, '--no-git-tag-version'], plugin));
    assertSucceeded(await npm(['publish', '--registry', registry!], plugin));
  }, 300000);

  it('4. finds, adds and runs the new plugin from a second fresh folder', async () => {
    secondFolder = freshFolder('second');
    assertSucceeded(await npm(['init', '-y'], secondFolder));
    assertSucceeded(await npm(['install', '@codefeedr/cli'], secondFolder));
    const search = assertSucceeded(
      await codefeedr(['plugins', 'search', 'acme', '--json'], secondFolder),
    );
    const results = (
      JSON.parse(search.stdout) as {
        results: { name: string; version: string; components: { name: string }[] }[];
      }
    ).results;
    const hit = results.find((r) => r.name === 'codefeedr-plugin-acme-hello');
    expect(hit?.version).toBe(`0.1.${stamp}`);
    expect(hit?.components.map((c) => c.name)).toEqual(['greetings', 'shout']);

    assertSucceeded(await codefeedr(['plugins', 'add', 'acme-hello'], secondFolder));
    const installed = JSON.parse(readFileSync(join(secondFolder.dir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(installed.dependencies)).toContain('codefeedr-plugin-acme-hello');

    const to = `e2e-${stamp}`;
    const count = 7;
    writeFileSync(
      join(secondFolder.dir, 'pipeline.yaml'),
      [
        'name: acme',
        'stages:',
        '  - id: hello',
        '    use: greetings',
        `    with: { to: "${to}", count: ${count} }`,
        '  - id: loud',
        '    use: codefeedr-plugin-acme-hello:shout',
        '    from: hello',
        '    with: { exclamations: 2 }',
        '  - id: out',
        '    use: ndjson-file',
        '    from: loud',
        '    with: { path: out.ndjson, mode: truncate }',
        '',
      ].join('\n'),
    );
    assertSucceeded(await codefeedr(['run', 'pipeline.yaml'], secondFolder));
    const lines = readFileSync(join(secondFolder.dir, 'out.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    const expected = Array.from({ length: count }, (_, i) => ({
      n: i + 1,
      to,
      text: `HELLO, ${to.toUpperCase()}!!`,
    }));
    expect(lines).toEqual(expected);
  }, 180000);

  it('5. bad inputs each fail with one clear error and a non-zero exit', async () => {
    const file = (name: string, lines: string[]) => {
      writeFileSync(join(secondFolder.dir, name), `${lines.join('\n')}\n`);
      return name;
    };
    const head = ['name: bad', 'stages:'];
    const syntax = await codefeedr(
      ['validate', file('syntax.yaml', [...head, '  - id: a', '    use: [greetings'])],
      secondFolder,
    );
    expectOneClearError(syntax, 'PIPELINE_INVALID');
    expect(syntax.stderr).toMatch(/syntax\.yaml:\d+:\d+: YAML syntax error/);

    const unknown = await codefeedr(
      [
        'validate',
        file('unknown.yaml', [
          ...head,
          '  - { id: a, use: greetingz, with: { to: x } }',
          '  - { id: b, use: printer, from: a }',
        ]),
      ],
      secondFolder,
    );
    expectOneClearError(unknown, 'PIPELINE_INVALID');
    expect(unknown.stderr).toContain('unknown.yaml:3:19: No component named "greetingz"');
    expect(unknown.stderr).toContain('Did you mean "greetings"');

    const mismatch = await codefeedr(
      [
        'validate',
        file('mismatch.yaml', [
          ...head,
          '  - { id: n, use: sequence, with: { to: 3 } }',
          '  - { id: s, use: shout, from: n }',
          '  - { id: p, use: printer, from: s }',
        ]),
      ],
      secondFolder,
    );
    expectOneClearError(mismatch, 'PIPELINE_INVALID');
    expect(mismatch.stderr).toContain(
      'mismatch.yaml:4:32: Input 1 of stage "s" expects hello.Greeting@1 but its parent "n" emits codefeedr.SequenceNumber@1',
    );

    const missing = await codefeedr(
      [
        'run',
        file('missing.yaml', [
          ...head,
          '  - { id: g, use: greetings, with: { count: 2 } }',
          '  - { id: p, use: printer, from: g }',
        ]),
      ],
      secondFolder,
    );
    expectOneClearError(missing, 'PIPELINE_INVALID');
    expect(missing.stderr).toContain(
      'missing.yaml:3:36: stage "g" (codefeedr-plugin-acme-hello:greetings): with.to is required',
    );

    await publishPackage('codefeedr-plugin-e2e-broken', {
      keywords: ['codefeedr-plugin'],
      codefeedr: { apiVersion: 1, components: [{ name: 'x', kind: 'sink' }] },
    });
    const broken = await codefeedr(['plugins', 'add', 'e2e-broken'], secondFolder);
    expectOneClearError(broken, 'MANIFEST_INVALID');
    expect(broken.stderr).toContain('codefeedr.components[0].kind must be one of');

    await publishPackage('codefeedr-plugin-e2e-ancient', {
      keywords: ['codefeedr-plugin'],
      peerDependencies: { '@codefeedr/core': '^9.0.0' },
      codefeedr: {
        apiVersion: 1,
        components: [
          {
            name: 'old',
            kind: 'input',
            export: 'old',
            description: 'Old.',
            configSchema: { type: 'object' },
            outputType: 'old.Thing@1',
          },
        ],
      },
    });
    const ancient = await codefeedr(['plugins', 'add', 'e2e-ancient'], secondFolder);
    expectOneClearError(ancient, 'PLUGIN_CORE_INCOMPATIBLE');
    expect(ancient.stderr).toContain(
      `needs @codefeedr/core ^9.0.0, but ${versions.get('@codefeedr/core')} is installed`,
    );
    // Neither bad plugin was left installed.
    const after = JSON.parse(readFileSync(join(secondFolder.dir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(after.dependencies).sort()).toEqual([
      '@codefeedr/cli',
      'codefeedr-plugin-acme-hello',
    ]);

    // And the good one goes away again with `plugins remove`, by its short name.
    assertSucceeded(await codefeedr(['plugins', 'remove', 'acme-hello'], secondFolder));
    const removed = JSON.parse(readFileSync(join(secondFolder.dir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(removed.dependencies)).toEqual(['@codefeedr/cli']);
  }, 180000);
});
