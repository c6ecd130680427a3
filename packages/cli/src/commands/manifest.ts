import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import {
  manifestFromModule,
  packageEntry,
  PLUGIN_KEYWORD,
  PluginLoadError,
  validateManifest,
  type PackageJson,
} from '@codefeedr/registry';
import type { CommandContext } from '../program.js';
import { ManifestOutOfSyncError } from '../cli-errors.js';

export function registerManifestCommand(program: Command, context: CommandContext): void {
  program
    .command('manifest')
    .description(
      'Write the plugin manifest (package.json "codefeedr" field) derived from the built module\'s components, so config schemas are never written twice. Run after the build.',
    )
    .option('--check', 'only verify the manifest is in sync (exit 2 if not)')
    .action(async (options: { check?: boolean }, command: Command) => {
      const out = context.output(command);
      try {
        const file = join(out.io.cwd, 'package.json');
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
        const name = pkg.name ?? out.io.cwd;
        const entry = packageEntry(out.io.cwd, pkg);
        let moduleExports: Record<string, unknown>;
        try {
          moduleExports = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
        } catch (error) {
          throw new PluginLoadError(
            name,
            `importing ${entry} failed (${(error as Error).message}); build it first`,
            error,
          );
        }
        const manifest = manifestFromModule(moduleExports);
        const keywords = Array.isArray(pkg.keywords) ? pkg.keywords : [];
        const inSync =
          isDeepStrictEqual(pkg['codefeedr'], manifest) && keywords.includes(PLUGIN_KEYWORD);
        if (options.check) {
          if (!inSync) throw new ManifestOutOfSyncError(name);
        } else if (!inSync) {
          const updated: PackageJson = {
            ...pkg,
            keywords: [...new Set([...keywords, PLUGIN_KEYWORD])],
            codefeedr: manifest,
          };
          validateManifest(updated);
          writeFileSync(file, `${JSON.stringify(updated, null, 2)}\n`);
        }
        out.data({ ok: true, package: name, changed: !inSync && !options.check, manifest });
        out.line(
          `${out.colors.green('✓')} ${name}: ${manifest.components.length} component(s) ${inSync ? 'already in sync' : options.check ? '' : 'written to package.json'}`.trimEnd(),
        );
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
