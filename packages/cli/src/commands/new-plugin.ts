import { relative } from 'node:path';
import type { Command } from 'commander';
import type { CommandContext } from '../program.js';
import { templateDir } from '../cli-package.js';
import { scaffoldPlugin } from '../plugin-scaffolder.js';
import { runNpm } from '../npm-client.js';

export function registerNewCommand(program: Command, context: CommandContext): void {
  const create = program.command('new').description('Create something from a template.');
  create
    .command('plugin')
    .description(
      'Scaffold a working, tested plugin package: acme-hello → codefeedr-plugin-acme-hello, @acme/hello → @acme/codefeedr-plugin-hello. At a monorepo root it goes to plugins/<name>.',
    )
    .argument('<name>', 'plugin name (acme-hello or @scope/name)')
    .option(
      '-d, --dir <dir>',
      'target folder (default: plugins/<name> at a monorepo root, else ./<name>)',
    )
    .option('--install', 'run npm install afterwards (in the monorepo root for a workspace)')
    .action(
      async (name: string, options: { dir?: string; install?: boolean }, command: Command) => {
        const out = context.output(command);
        try {
          const result = scaffoldPlugin({
            name,
            cwd: out.io.cwd,
            dir: options.dir,
            templateDir: templateDir(),
          });
          const shown = relative(out.io.cwd, result.dir) || '.';
          if (options.install) {
            await runNpm(['install', '--no-audit', '--no-fund'], {
              cwd: result.mode === 'workspace' ? out.io.cwd : result.dir,
              env: out.io.env,
              echo: out.json ? undefined : out.io.stderr,
            });
          }
          out.data({ ok: true, ...result });
          out.line(
            `${out.colors.green('✓')} created ${result.packageName} in ${shown} (${result.mode})`,
          );
          const local = Object.entries(result.localPackages);
          if (local.length > 0)
            out.line(
              `  ${local.map(([name]) => name).join(', ')} from local tarballs or folders, as this project has them (until they are published)`,
            );
          const missing = [
            '@codefeedr/cli',
            '@codefeedr/core',
            '@codefeedr/registry',
            '@codefeedr/testkit',
          ].filter(
            (name) =>
              result.mode === 'standalone' && local.length > 0 && !(name in result.localPackages),
          );
          if (missing.length > 0)
            out.note(
              out.colors.yellow(
                `warning ${missing.join(', ')} will come from the registry: put their tarballs (npm pack) beside the others, or edit ${shown}/package.json`,
              ),
            );
          out.line('');
          out.line('Next:');
          if (!options.install)
            out.line(
              `  ${result.mode === 'workspace' ? 'npm install' : `cd ${shown} && npm install`}`,
            );
          out.line(
            `  npm run build${result.mode === 'workspace' ? ` -w ${result.packageName}` : ''}   # tsup, then \`codefeedr manifest\` refreshes the manifest`,
          );
          out.line(`  npm test${result.mode === 'workspace' ? ` -w ${result.packageName}` : ''}`);
          out.line(
            `  npx codefeedr run ${result.mode === 'workspace' ? `${shown}/` : ''}examples/pipeline.yaml`,
          );
        } catch (error) {
          context.exitCode = out.failure(error);
        }
      },
    );
}
