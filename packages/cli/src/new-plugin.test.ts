import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, project } from './cli-fixture.js';

describe('codefeedr new plugin', () => {
  it('outside a monorepo, takes @codefeedr/* from the tarballs this project installed them from (they are not published yet)', async () => {
    const tarballs = project(
      Object.fromEntries(
        ['cli', 'core', 'registry', 'testkit'].map((n) => [`codefeedr-${n}-0.1.0.tgz`, 'not read']),
      ),
      'tarballs-',
    );
    const dir = project();
    const relativeSpec = (name: string) =>
      `file:../${tarballs.split('/').pop()}/codefeedr-${name}-0.1.0.tgz`;
    // As `npm install <tarballs>` writes them: relative to the project; no testkit (a plugin needs it).
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'app',
        dependencies: {
          '@codefeedr/cli': relativeSpec('cli'),
          '@codefeedr/core': relativeSpec('core'),
          '@codefeedr/registry': relativeSpec('registry'),
        },
      }),
    );
    const result = await cli(['new', 'plugin', 'acme-hello', '--json'], dir);
    expect(result.code, result.stdout).toBe(0);
    const pkg = JSON.parse(readFileSync(join(dir, 'acme-hello', 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    for (const name of ['cli', 'core', 'registry', 'testkit'])
      expect(pkg.devDependencies[`@codefeedr/${name}`]).toBe(
        `file:${join(tarballs, `codefeedr-${name}-0.1.0.tgz`)}`,
      );
    // What users of the plugin install stays a range.
    expect(pkg.peerDependencies['@codefeedr/core']).toMatch(/^\^/);
    expect(Object.keys(result.json()['localPackages'] as object).sort()).toEqual([
      '@codefeedr/cli',
      '@codefeedr/core',
      '@codefeedr/registry',
      '@codefeedr/testkit',
    ]);

    // From a registry install (no file: specs) nothing changes.
    const plain = project();
    const registry = await cli(['new', 'plugin', 'acme-other'], plain);
    expect(registry.code, registry.stderr).toBe(0);
    const plainPkg = JSON.parse(
      readFileSync(join(plain, 'acme-other', 'package.json'), 'utf8'),
    ) as {
      devDependencies: Record<string, string>;
    };
    expect(plainPkg.devDependencies['@codefeedr/core']).toMatch(/^\^/);
  });
});
