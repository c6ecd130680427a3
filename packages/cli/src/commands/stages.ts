import { Option, type Command } from 'commander';
import { discoverPlugins } from '@codefeedr/registry';
import type { CommandContext } from '../program.js';
import { formatTable } from '../command-output.js';

export function registerStagesCommand(program: Command, context: CommandContext): void {
  program
    .command('stages')
    .description('List the components this project can use: core built-ins and installed plugins.')
    .addOption(
      new Option('--kind <kind>', 'only this kind').choices([
        'input',
        'transform',
        'output',
        'buffer',
        'pipeline',
        'keymanager',
      ]),
    )
    .action((options: { kind?: string }, command: Command) => {
      const out = context.output(command);
      try {
        const catalog = discoverPlugins(out.io.cwd);
        const components = catalog
          .components()
          .filter((c) => options.kind === undefined || c.kind === options.kind)
          .map((c) => ({
            id: c.id,
            name: c.name,
            kind: c.kind,
            package: c.packageName,
            description: c.description,
            inputTypes: c.inputTypes ?? [],
            outputType: c.outputType ?? null,
            guarantees: c.guarantees ?? [],
          }));
        out.data({ ok: true, components });
        const rows = components.map((c) => [
          c.id,
          c.kind,
          c.kind === 'input'
            ? `→ ${c.outputType}`
            : c.inputTypes.length > 0
              ? `${c.inputTypes.join(', ')}${c.outputType ? ` → ${c.outputType}` : ''}`
              : '',
          c.description,
        ]);
        for (const line of formatTable([['COMPONENT', 'KIND', 'TYPES', 'DESCRIPTION'], ...rows]))
          out.line(line);
        const broken = catalog.plugins.filter((p) => p.problem);
        if (broken.length > 0) {
          out.note(
            out.colors.yellow(
              `${broken.length} plugin(s) skipped because of problems: ${broken.map((p) => p.name).join(', ')} (see \`codefeedr plugins list\`)`,
            ),
          );
        }
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
