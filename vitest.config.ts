// One vitest run over every workspace. Workspace packages resolve to their TypeScript
// sources so tests never run against a stale build; end-to-end tests that need the
// published shape build and publish through npm themselves.
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;

function workspaceAliases(): Record<string, string> {
  const aliases: Record<string, string> = {};
  for (const group of ['packages', 'plugins']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const pkgFile = join(dir, name, 'package.json');
      const entry = join(dir, name, 'src', 'index.ts');
      if (!existsSync(pkgFile) || !existsSync(entry)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { name: string };
      aliases[pkg.name] = resolve(entry);
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
    ],
    exclude: ['**/node_modules/**', '**/dist/**', '.tmp/**'],
    globalSetup: ['test/services/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-report.json' }]],
  },
});
