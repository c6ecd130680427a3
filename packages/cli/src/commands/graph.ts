import { Option, type Command } from 'commander';
import type { CommandContext } from '../program.js';
import {
  graphModel,
  graphModelOfDescription,
  renderGraph,
  type GraphFormat,
} from '../graph-renderer.js';
import { checkPipelineFile, isPipelineFileArgument, prebuiltPipeline } from '../pipeline-source.js';

export function registerGraphCommand(program: Command, context: CommandContext): void {
  program
    .command('graph')
    .description(
      'Draw a pipeline file (from manifests only; no ${VAR} needs to be set) or a prebuilt pipeline as a DAG: text, Mermaid or Graphviz dot.',
    )
    .argument('<pipeline>', 'pipeline file (YAML or JSON) or prebuilt pipeline name')
    .addOption(
      new Option('-f, --format <format>', 'output format')
        .choices(['text', 'mermaid', 'dot'])
        .default('text'),
    )
    .action(async (target: string, options: { format: GraphFormat }, command: Command) => {
      const out = context.output(command);
      try {
        // The shape of the DAG needs neither secrets nor valid config values.
        const model = isPipelineFileArgument(out.io.cwd, target)
          ? graphModel(
              checkPipelineFile(out.io.cwd, target, out.io.env, {
                allowMissingEnv: true,
                configs: false,
              }).resolved,
            )
          : graphModelOfDescription((await prebuiltPipeline(out.io.cwd, target, [])).describe());
        out.data({ ok: true, graph: model, rendered: renderGraph(model, options.format) });
        if (!out.json) out.io.stdout.write(renderGraph(model, options.format));
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
