import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ComponentAmbiguousError,
  ComponentExportMissingError,
  ComponentNotFoundError,
  ManifestInvalidError,
  PluginCoreIncompatibleError,
  PackageJsonInvalidError,
  PluginLoadError,
} from './errors.js';
import { fixtureProject, manifestOf } from './fixture-project.js';
import { discoverPlugins } from './plugin-catalog.js';

const events = (exportName: string) => manifestOf(['events', 'input', exportName]);
const workingModule = `export const eventsInput = { kind: 'input', name: 'events', description: 'd', create(id) { return { id }; } };\n`;

describe('discoverPlugins', () => {
  it('lists dependencies and workspace plugins from manifests without importing them', () => {
    const dir = fixtureProject([
      // Importing this module would throw: discovery must not import it.
      {
        name: 'codefeedr-plugin-explosive',
        codefeedr: events('eventsInput'),
        module: `throw new Error('imported!');\n`,
      },
      {
        name: 'codefeedr-plugin-local',
        codefeedr: manifestOf(['upper', 'transform', 'upper']),
        workspace: 'plugins/local',
      },
      { name: 'left-pad-like', keywords: ['other'] },
    ]);
    const catalog = discoverPlugins(dir, { coreVersion: '0.1.0', builtins: false });
    expect(catalog.plugins.map((p) => [p.name, p.source, p.problem?.code])).toEqual([
      ['codefeedr-plugin-local', 'workspace', undefined],
      ['codefeedr-plugin-explosive', 'dependency', undefined],
    ]);
    expect(catalog.components().map((c) => c.id)).toEqual([
      'codefeedr-plugin-local:upper',
      'codefeedr-plugin-explosive:events',
    ]);
    expect(catalog.resolve('events').id).toBe('codefeedr-plugin-explosive:events');
  });

  it('imports a plugin only on load, and reports import failures and missing exports clearly', async () => {
    const dir = fixtureProject([
      {
        name: 'codefeedr-plugin-explosive',
        codefeedr: events('eventsInput'),
        module: `throw new Error('imported!');\n`,
      },
      {
        name: 'codefeedr-plugin-ok',
        codefeedr: manifestOf(['events', 'input', 'eventsInput'], ['ghost', 'input', 'ghostInput']),
        module: workingModule,
      },
    ]);
    const catalog = discoverPlugins(dir, { coreVersion: '0.1.0' });
    const loaded = (await catalog.load(catalog.resolve('codefeedr-plugin-ok:events'))) as {
      name: string;
    };
    expect(loaded.name).toBe('events');
    await expect(catalog.load(catalog.resolve('codefeedr-plugin-ok:ghost'))).rejects.toBeInstanceOf(
      ComponentExportMissingError,
    );
    const failure = await catalog
      .load(catalog.resolve('codefeedr-plugin-explosive:events'))
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PluginLoadError);
    expect((failure as Error).message).toContain('imported!');
  });

  it('rejects an ambiguous short name, naming both packages; the full name still works', () => {
    const dir = fixtureProject([
      { name: '@acme/codefeedr-plugin-a', codefeedr: events('a') },
      { name: '@acme/codefeedr-plugin-b', codefeedr: events('b') },
    ]);
    const catalog = discoverPlugins(dir, { coreVersion: '0.1.0' });
    const error = (() => {
      try {
        catalog.resolve('events');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ComponentAmbiguousError);
    expect((error as Error).message).toContain('@acme/codefeedr-plugin-a:events');
    expect((error as Error).message).toContain('@acme/codefeedr-plugin-b:events');
    expect(catalog.resolve('@acme/codefeedr-plugin-b:events').export).toBe('b');
  });

  it('keeps a plugin with a malformed manifest out, with its error, and mentions it on a miss', () => {
    const dir = fixtureProject([
      {
        name: 'codefeedr-plugin-broken',
        codefeedr: { apiVersion: 1, components: [{ name: 'x', kind: 'sink' }] },
      },
    ]);
    const catalog = discoverPlugins(dir, { coreVersion: '0.1.0' });
    const broken = catalog.plugin('codefeedr-plugin-broken')!;
    expect(broken.problem).toBeInstanceOf(ManifestInvalidError);
    expect(broken.problem!.message).toContain('codefeedr.components[0].kind must be one of');
    expect(() => catalog.resolve('codefeedr-plugin-broken:x')).toThrow(ManifestInvalidError);
    expect(() => catalog.resolve('x')).toThrow(/codefeedr-plugin-broken/);
  });

  it('refuses a plugin whose core peer range excludes the installed core', () => {
    const dir = fixtureProject([
      {
        name: 'codefeedr-plugin-old',
        codefeedr: events('e'),
        peerDependencies: { '@codefeedr/core': '^2.0.0' },
      },
      {
        name: 'codefeedr-plugin-new',
        codefeedr: manifestOf(['fresh', 'input', 'f']),
        peerDependencies: { '@codefeedr/core': '^0.1.0-0' },
      },
    ]);
    const catalog = discoverPlugins(dir, { coreVersion: '0.1.3-snapshot.1' });
    expect(catalog.plugin('codefeedr-plugin-new')!.problem).toBeUndefined();
    const problem = catalog.plugin('codefeedr-plugin-old')!.problem;
    expect(problem).toBeInstanceOf(PluginCoreIncompatibleError);
    expect(problem!.message).toContain(
      'needs @codefeedr/core ^2.0.0, but 0.1.3-snapshot.1 is installed',
    );
    expect(() => catalog.resolve('events')).toThrow(PluginCoreIncompatibleError);
  });

  it('suggests close names for an unknown component', () => {
    const dir = fixtureProject([{ name: 'codefeedr-plugin-ok', codefeedr: events('e') }]);
    const catalog = discoverPlugins(dir, { coreVersion: '0.1.0' });
    expect(() => catalog.resolve('event')).toThrow(ComponentNotFoundError);
    expect(() => catalog.resolve('event')).toThrow(/Did you mean "events"/);
  });

  it('offers core built-ins without any plugin', () => {
    const catalog = discoverPlugins(fixtureProject([]));
    const builtins = catalog.components().filter((c) => c.plugin.source === 'builtin');
    expect(builtins.length).toBeGreaterThan(0);
    expect(builtins.every((c) => c.id.startsWith('@codefeedr/core:'))).toBe(true);
  });

  it('a malformed project package.json is an error naming the file, not an empty project', () => {
    const dir = fixtureProject([]);
    writeFileSync(join(dir, 'package.json'), '{ "name": "x", "dependencies": { ');
    let error: unknown;
    try {
      discoverPlugins(dir);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PackageJsonInvalidError);
    expect((error as PackageJsonInvalidError).code).toBe('PACKAGE_JSON_INVALID');
    expect((error as Error).message).toContain(join(dir, 'package.json'));
    expect((error as Error).message).toContain('not valid JSON');
    writeFileSync(join(dir, 'package.json'), '[1, 2]');
    expect(() => discoverPlugins(dir)).toThrow(/not a JSON object/);
    // No package.json at all: the built-ins, no error.
    rmSync(join(dir, 'package.json'));
    expect(discoverPlugins(dir).components().length).toBeGreaterThan(0);
  });
});
