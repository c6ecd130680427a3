import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, expectOneError, project } from './cli-fixture.js';

const registry = () => {
  const url = process.env['CODEFEEDR_NPM_REGISTRY'];
  if (!url) throw new Error('CODEFEEDR_NPM_REGISTRY is not set: run through vitest (global setup)');
  return url;
};

const configSchema = {
  type: 'object',
  properties: {
    every: { type: 'integer', minimum: 1, description: 'Milliseconds between ticks.' },
    unit: { type: 'string', enum: ['ms', 's'], default: 'ms' },
    auth: {
      type: 'object',
      properties: {
        user: { type: 'string' },
        token: { type: 'string', description: 'Use ${ENV}.' },
      },
      required: ['user'],
    },
    tags: { type: 'array', items: { type: 'string' } },
    limit: { anyOf: [{ type: 'number' }, { type: 'null' }], default: null },
  },
  required: ['every'],
};

/** A plugin package folder, installed nowhere yet: a manifest and a module. */
function makePlugin(name: string): string {
  const dir = project(
    {
      'index.js':
        "export const tick = { kind: 'input', name: 'tick', description: 'Ticks.', create() {} };\n",
    },
    'plugin-src-',
  );
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name,
      version: '1.2.3',
      type: 'module',
      main: 'index.js',
      keywords: ['codefeedr-plugin'],
      codefeedr: {
        apiVersion: 1,
        components: [
          {
            name: 'tick',
            kind: 'input',
            export: 'tick',
            description: 'Ticks.',
            configSchema,
            outputType: 'x.Tick@1',
          },
        ],
      },
    }),
  );
  return dir;
}

const npmEnv = () => ({
  npm_config_registry: registry(),
  npm_config_audit: 'false',
  npm_config_fund: 'false',
});

describe('codefeedr plugins', () => {
  it('info lists every config key: nested ones, type, required, default, allowed values, bounds, description', async () => {
    const dir = project({});
    const plugin = makePlugin('codefeedr-plugin-ticks');
    const added = await cli(['plugins', 'add', plugin], dir, npmEnv());
    expect(added.code, added.stderr).toBe(0);
    const info = await cli(['plugins', 'info', 'ticks'], dir);
    expect(info.code, info.stderr).toBe(0);
    for (const line of [
      'with.every (required): integer, >= 1 — Milliseconds between ticks.',
      'with.unit: string, one of "ms", "s", default "ms"',
      'with.auth: object',
      'with.auth.user (required): string',
      'with.auth.token: string — Use ${ENV}.',
      'with.tags: list of string',
      'with.limit: number | null, default null',
    ])
      expect(info.stdout).toContain(line);
    const json = await cli(['plugins', 'info', 'ticks', '--json'], dir);
    const keys = (
      json.json()['plugin'] as { components: { configKeys: { key: string }[] }[] }
    ).components[0]!.configKeys.map((k) => k.key);
    expect(keys).toEqual(['every', 'unit', 'auth', 'auth.user', 'auth.token', 'tags', 'limit']);
  });

  it('add installs from a folder, a tarball made by npm pack, and a git URL', async () => {
    const sources: [string, (plugin: string) => string][] = [
      ['folder', (plugin) => plugin],
      [
        'tarball',
        (plugin) => {
          const file = execFileSync('npm', ['pack', '--silent'], {
            cwd: plugin,
            encoding: 'utf8',
          }).trim();
          return join(plugin, file);
        },
      ],
      [
        'git',
        (plugin) => {
          const git = (...args: string[]) =>
            execFileSync('git', args, {
              cwd: plugin,
              stdio: 'ignore',
              env: {
                ...process.env,
                GIT_AUTHOR_NAME: 't',
                GIT_AUTHOR_EMAIL: 't@t',
                GIT_COMMITTER_NAME: 't',
                GIT_COMMITTER_EMAIL: 't@t',
              },
            });
          git('init', '-q');
          git('add', '.');
          git('commit', '-q', '-m', 'plugin');
          return `git+file://${plugin}`;
        },
      ],
    ];
    for (const [kind, specOf] of sources) {
      const name = `codefeedr-plugin-from-${kind}`;
      const plugin = makePlugin(name);
      const dir = project({});
      const spec = specOf(plugin);
      const added = await cli(['plugins', 'add', spec, '--json'], dir, npmEnv());
      expect(added.code, `${kind}: ${added.stdout}${added.stderr}`).toBe(0);
      expect(added.json()).toMatchObject({ ok: true, plugin: { name, version: '1.2.3' } });
      expect(existsSync(join(dir, 'node_modules', name, 'package.json'))).toBe(true);
      const deps = (
        JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          dependencies: Record<string, string>;
        }
      ).dependencies;
      expect(Object.keys(deps)).toEqual([name]);
      const listed = await cli(['stages', '--json'], dir);
      expect((listed.json()['components'] as { id: string }[]).map((c) => c.id)).toContain(
        `${name}:tick`,
      );
    }
  });

  it('add refuses a folder that is not a plugin before installing it', async () => {
    const dir = project({});
    const notPlugin = project({}, 'not-plugin-');
    const result = await cli(['plugins', 'add', notPlugin], dir, npmEnv());
    expect(result.code).toBe(2);
    expectOneError(result.stderr, 'NOT_A_PLUGIN');
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);
    const empty = await cli(['plugins', 'add', join(dir, 'nothing-here')], dir, npmEnv());
    expect(empty.code).toBe(2);
    expectOneError(empty.stderr, 'PLUGIN_SOURCE_INVALID');
  });
});
