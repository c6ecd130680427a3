// Test support (not exported): writes throwaway projects with installed plugins on disk.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface FixturePlugin {
  name: string;
  version?: string;
  keywords?: string[];
  codefeedr?: unknown;
  peerDependencies?: Record<string, string>;
  /** Source of index.js (ESM). */
  module?: string;
  /** Where it is: installed under node_modules (default) or a workspace folder. */
  workspace?: string;
}

export function writeJson(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A project folder under `<repo>/.tmp` (so `@codefeedr/core` resolves as it would in a
 * real install) with the given plugins installed and listed as dependencies.
 */
export function fixtureProject(
  plugins: readonly FixturePlugin[],
  extra: Record<string, unknown> = {},
): string {
  const base = join(import.meta.dirname, '..', '..', '..', '.tmp');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, 'registry-fixture-'));
  const dependencies: Record<string, string> = {};
  const workspaces: string[] = [];
  for (const plugin of plugins) {
    const pluginDir = plugin.workspace
      ? join(dir, plugin.workspace)
      : join(dir, 'node_modules', plugin.name);
    if (plugin.workspace) workspaces.push(plugin.workspace);
    else dependencies[plugin.name] = plugin.version ?? '1.0.0';
    writeJson(join(pluginDir, 'package.json'), {
      name: plugin.name,
      version: plugin.version ?? '1.0.0',
      type: 'module',
      main: 'index.js',
      keywords: plugin.keywords ?? ['codefeedr-plugin'],
      ...(plugin.peerDependencies ? { peerDependencies: plugin.peerDependencies } : {}),
      ...(plugin.codefeedr === undefined ? {} : { codefeedr: plugin.codefeedr }),
    });
    writeFileSync(join(pluginDir, 'index.js'), plugin.module ?? 'export {};\n');
  }
  writeJson(join(dir, 'package.json'), {
    name: 'fixture-project',
    version: '1.0.0',
    dependencies,
    workspaces,
    ...extra,
  });
  return dir;
}

/** A manifest with one component per `[name, kind, export]`, typed as `example.Thing@1`. */
export function manifestOf(
  ...components: [name: string, kind: string, exportName: string][]
): unknown {
  return {
    apiVersion: 1,
    components: components.map(([name, kind, exportName]) => ({
      name,
      kind,
      export: exportName,
      description: `The ${name} component.`,
      configSchema: {
        type: 'object',
        properties: { size: { type: 'integer' } },
        required: ['size'],
      },
      ...(kind === 'input' ? { outputType: 'example.Thing@1' } : {}),
      ...(kind === 'transform'
        ? { inputTypes: ['example.Thing@1'], outputType: 'example.Thing@1' }
        : {}),
      ...(kind === 'output' ? { inputTypes: ['example.Thing@1'] } : {}),
    })),
  };
}
