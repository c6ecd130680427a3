import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MODULE_DIR = dirname(fileURLToPath(import.meta.url));
/** The @codefeedr/cli package folder: one level above src/ (sources) or dist/ (build). */
export const CLI_DIR = join(MODULE_DIR, '..');

export function cliVersion(): string {
  return (JSON.parse(readFileSync(join(CLI_DIR, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/**
 * Where `codefeedr new plugin` copies from: dist/template, shipped in the package (copied
 * from templates/plugin at build), else, running from sources, the monorepo's templates/plugin.
 */
export function templateDir(): string {
  for (const candidate of [
    join(MODULE_DIR, 'template'),
    join(CLI_DIR, '..', '..', 'templates', 'plugin'),
  ]) {
    if (existsSync(join(candidate, 'package.json'))) return candidate;
  }
  throw new Error(`the plugin template is missing from ${CLI_DIR}; reinstall @codefeedr/cli`);
}
