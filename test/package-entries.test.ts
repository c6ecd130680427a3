// Every entry a workspace package publishes loads both ways a user can load it: require() of
// its CJS build and import() of its ESM build, with the same exports. (The CJS build of core
// once failed to load: an import.meta.url the build had not shimmed.) Runs the builds, so
// `npm run build` first, as the README's test command does.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

interface Entry {
  name: string;
  dir: string;
}

function entries(): Entry[] {
  const found: Entry[] = [];
  for (const group of ['packages', 'plugins']) {
    for (const folder of readdirSync(join(root, group))) {
      const file = join(root, group, folder, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as {
        name: string;
        private?: boolean;
        exports?: Record<string, unknown>;
      };
      for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
        if (typeof target !== 'object' || target === null) continue;
        if (!('require' in target) || !('import' in target)) continue;
        found.push({ name: `${pkg.name}${subpath.slice(1)}`, dir: join(root, group, folder) });
      }
    }
  }
  return found;
}

/** The sorted export names of `name` loaded as `how`, in a node of its own. */
function exportNames(entry: Entry, how: 'require' | 'import'): string[] {
  const load =
    how === 'require'
      ? `const m = require(${JSON.stringify(entry.name)});`
      : `const m = await import(${JSON.stringify(entry.name)});`;
  const script = `${load} process.stdout.write(JSON.stringify(Object.keys(m).filter((k) => k !== 'default' && k !== 'module.exports').sort()));`;
  const out = execFileSync(
    process.execPath,
    how === 'require' ? ['-e', script] : ['--input-type=module', '-e', script],
    { cwd: entry.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return JSON.parse(out) as string[];
}

describe('published entries', () => {
  const all = entries();

  it('finds the dual (CJS and ESM) entries of the workspace packages', () => {
    expect(all.map((e) => e.name)).toEqual(
      expect.arrayContaining([
        '@codefeedr/core',
        '@codefeedr/core/buffer',
        '@codefeedr/plugin-github',
      ]),
    );
  });

  it.each(all.map((e) => [e.name, e] as const))(
    '%s loads with require() and import(), with the same exports',
    (_, entry) => {
      const esm = exportNames(entry, 'import');
      expect(esm.length).toBeGreaterThan(0);
      expect(exportNames(entry, 'require')).toEqual(esm);
    },
  );
});
