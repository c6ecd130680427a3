import type { Command } from 'commander';
import { parentRefsOf, parseConfig, redactSecrets, type Pipeline } from '@codefeedr/core';
import { stringify } from 'yaml';
import type { CommandContext } from '../program.js';
import { openPipeline } from '../pipeline-source.js';
import { collect } from './validate.js';

/**
 * The configuration a run would use: `${VAR}`s filled in, `--set`s applied, values typed and
 * every default of every component written out. Secrets are redacted — values that came
 * from the environment and fields named like secrets — so the output can be pasted in a
 * bug report.
 */
export function resolvedConfig(pipeline: Pipeline): Record<string, unknown> {
  const { buffer, deadLetter } = pipeline.definition;
  return redactSecrets({
    pipeline: pipeline.name,
    ...(buffer === undefined
      ? {}
      : 'component' in buffer
        ? {
            buffer: {
              use: buffer.component.name,
              with: parseConfig(
                `buffer ${buffer.component.name}`,
                buffer.component.configSchema,
                buffer.config,
              ),
            },
          }
        : { buffer: { use: buffer.instance.kind } }),
    deadLetter: {
      to: deadLetter.destination ?? 'auto',
      ...(deadLetter.dir === undefined ? {} : { dir: deadLetter.dir }),
      retries: deadLetter.retries,
    },
    stages: pipeline.stages.map((stage) => ({
      id: stage.id,
      kind: stage.kind,
      use: stage.component ?? null,
      from: parentRefsOf(pipeline.definition.edges, stage.id),
      with: stage.config ?? {},
    })),
  });
}

export function registerConfigCommand(program: Command, context: CommandContext): void {
  program
    .command('config')
    .description(
      'Print the configuration a run would use (environment filled in, --set applied, every default written out), secrets redacted.',
    )
    .argument('<pipeline>', 'pipeline file (YAML or JSON) or prebuilt pipeline name')
    .option('--set <key=value...>', 'override config as `run` does', collect, [])
    .action(async (target: string, options: { set: string[] }, command: Command) => {
      const out = context.output(command);
      try {
        const { pipeline } = await openPipeline(out.io.cwd, target, out.io.env, options.set);
        const config = resolvedConfig(pipeline);
        out.data({ ok: true, config });
        if (!out.json) out.io.stdout.write(stringify(config));
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
