import type { Command } from 'commander';
import { loadPipeline } from '@codefeedr/registry';
import type { CommandContext } from '../program.js';
import { checkPipelineFile } from '../pipeline-source.js';

export function registerValidateCommand(program: Command, context: CommandContext): void {
  program
    .command('validate')
    .description(
      'Check a pipeline file without running it: components, configs, edges and message types. All problems at once, with file:line:column.',
    )
    .argument('<file>', 'pipeline file (YAML or JSON)')
    .option('--set <stageId.key=value...>', 'override stage config values', collect, [])
    .action(async (file: string, options: { set: string[] }, command: Command) => {
      const out = context.output(command);
      try {
        const { catalog, spec, resolved } = checkPipelineFile(
          out.io.cwd,
          file,
          out.io.env,
          options.set,
        );
        // Creating the stages runs each component's own config check and core's DAG check.
        const pipeline = await loadPipeline(spec, catalog, resolved);
        const description = pipeline.describe();
        out.data({ ok: true, valid: true, file: spec.file, pipeline: description });
        out.line(
          `${out.colors.green('✓')} ${spec.file}: pipeline "${description.name}" is valid (${description.stages.length} stages, ${description.edges.length} edges)`,
        );
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
