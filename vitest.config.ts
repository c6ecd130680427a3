// One vitest run over every workspace. Workspace packages resolve to their TypeScript
// sources so tests never run against a stale build; end-to-end tests that need the
// published shape build and publish through npm themselves.
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;

/**
 * `@codefeedr/x` → its src/index.ts, and each subpath export (`@codefeedr/core/buffer`) → the
 * `source` file its package.json names, so tests never run against a stale build.
 */
function workspaceAliases(): { find: RegExp; replacement: string }[] {
  const aliases: { find: RegExp; replacement: string }[] = [];
  const exact = (name: string) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`);
  for (const group of ['packages', 'plugins']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const pkgFile = join(dir, name, 'package.json');
      const entry = join(dir, name, 'src', 'index.ts');
      if (!existsSync(pkgFile) || !existsSync(entry)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
        name: string;
        exports?: Record<string, { source?: string } | string>;
      };
      aliases.push({ find: exact(pkg.name), replacement: resolve(entry) });
      for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
        if (subpath === '.' || typeof target !== 'object' || target.source === undefined) continue;
        aliases.push({
          find: exact(`${pkg.name}${subpath.slice(1)}`),
          replacement: resolve(dir, name, target.source),
        });
      }
    }
  }
  return aliases;
}

export default defineConfig({
  resolve: { alias: workspaceAliases() },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'plugins/*/src/**/*.test.ts',
      'templates/plugin/src/**/*.test.ts',
      'test/**/*.test.ts',
      'docs-site/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**', '.tmp/**'],
    globalSetup: ['test/services/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-report.json' }]],
  },
});
