import { Option, type Command } from 'commander';
import type { CommandContext } from '../program.js';
import { graphModel, renderGraph, type GraphFormat } from '../graph-renderer.js';
import { checkPipelineFile } from '../pipeline-source.js';

export function registerGraphCommand(program: Command, context: CommandContext): void {
  program
    .command('graph')
    .description(
      'Draw a pipeline file as a DAG (text, Mermaid or Graphviz dot), from manifests only.',
    )
    .argument('<file>', 'pipeline file (YAML or JSON)')
    .addOption(
      new Option('-f, --format <format>', 'output format')
        .choices(['text', 'mermaid', 'dot'])
        .default('text'),
    )
    .action((file: string, options: { format: GraphFormat }, command: Command) => {
      const out = context.output(command);
      try {
        const { resolved } = checkPipelineFile(out.io.cwd, file, out.io.env);
        const model = graphModel(resolved);
        out.data({ ok: true, graph: model, rendered: renderGraph(model, options.format) });
        if (!out.json) out.io.stdout.write(renderGraph(model, options.format));
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
