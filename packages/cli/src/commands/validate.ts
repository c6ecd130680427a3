import type { Command } from 'commander';
import { isCodefeedrError, type Pipeline, type PipelineDescription } from '@codefeedr/core';
import type { CommandContext } from '../program.js';
import { UsageError } from '../cli-errors.js';
import { exitCodeFor, ExitCode } from '../exit-codes.js';
import { openPipeline } from '../pipeline-source.js';

/**
 * What is legal but almost certainly a mistake: a pipeline without an output stage computes
 * everything and keeps nothing (Flink refuses such a job: "No operators defined in streaming
 * topology"), and a stage nothing reads from drops its records.
 */
export function pipelineWarnings(description: PipelineDescription): string[] {
  const warnings: string[] = [];
  const outputs = description.stages.filter((s) => s.kind === 'output');
  if (outputs.length === 0) {
    warnings.push(
      `pipeline "${description.name}" has no output stage: its records are computed and dropped. Add one (printer, ndjson-file, or a plugin's output).`,
    );
  }
  const read = new Set(description.edges.map((e) => e.from));
  for (const stage of description.stages) {
    if (stage.kind !== 'output' && !read.has(stage.id) && outputs.length > 0) {
      warnings.push(
        `no stage reads from stage "${stage.id}": its records are dropped. Give it a child stage (from: ${stage.id}) or remove it.`,
      );
    }
  }
  return warnings;
}

interface ValidationResult {
  target: string;
  valid: boolean;
  pipeline?: PipelineDescription;
  warnings: string[];
  error?: unknown;
}

export function registerValidateCommand(program: Command, context: CommandContext): void {
  program
    .command('validate')
    .description(
      'Check pipeline files (or prebuilt pipelines) without running them: components, configs, edges and message types. All problems at once, with file:line:column; warnings for pipelines that keep nothing.',
    )
    .argument('<pipelines...>', 'pipeline files (YAML or JSON) or prebuilt pipeline names')
    .option(
      '--set <stageId.key=value...>',
      'override stage config values (one pipeline only)',
      collect,
      [],
    )
    .action(async (targets: string[], options: { set: string[] }, command: Command) => {
      const out = context.output(command);
      try {
        if (options.set.length > 0 && targets.length > 1) {
          throw new UsageError('--set names stages of one pipeline; validate one file with it');
        }
      } catch (error) {
        context.exitCode = out.failure(error);
        return;
      }
      const results: ValidationResult[] = [];
      for (const target of targets) {
        try {
          // Building runs each component's own config check and core's DAG check.
          const opened = await openPipeline(out.io.cwd, target, out.io.env, options.set);
          const shown = opened.kind === 'file' ? opened.checked.spec.file : target;
          results.push(describe(shown, opened.pipeline));
        } catch (error) {
          if (!isCodefeedrError(error) && targets.length === 1) throw error;
          results.push({ target, valid: false, warnings: [], error });
        }
      }
      const invalid = results.filter((r) => !r.valid);
      if (out.json && !(targets.length === 1 && invalid.length === 1)) {
        const [only] = results;
        out.data({
          ok: invalid.length === 0,
          ...(targets.length === 1 && only
            ? {
                valid: only.valid,
                file: only.target,
                pipeline: only.pipeline,
                warnings: only.warnings,
              }
            : {}),
          results: results.map((r) => ({
            file: r.target,
            valid: r.valid,
            ...(r.pipeline ? { pipeline: r.pipeline } : {}),
            warnings: r.warnings,
            ...(r.error === undefined
              ? {}
              : {
                  error: {
                    code: isCodefeedrError(r.error) ? r.error.code : 'UNEXPECTED',
                    message: String((r.error as Error).message ?? r.error),
                    ...(isCodefeedrError(r.error) && r.error.details['problems'] !== undefined
                      ? { problems: r.error.details['problems'] }
                      : {}),
                  },
                }),
          })),
        });
      }
      for (const result of results) {
        if (result.valid) {
          const d = result.pipeline!;
          out.line(
            `${out.colors.green('✓')} ${result.target}: pipeline "${d.name}" is valid (${d.stages.length} stages, ${d.edges.length} edges)`,
          );
          for (const warning of result.warnings)
            out.note(`${out.colors.yellow('warning')} ${result.target}: ${warning}`);
        } else if (!out.json || targets.length === 1) {
          context.exitCode = Math.max(context.exitCode, out.failure(result.error));
        } else {
          context.exitCode = Math.max(context.exitCode, exitCodeFor(result.error));
        }
      }
      if (targets.length > 1 && invalid.length > 0) {
        out.note(`${invalid.length} of ${targets.length} pipelines are invalid`);
        context.exitCode = Math.max(context.exitCode, ExitCode.INVALID_INPUT);
      }
    });
}

function describe(target: string, pipeline: Pipeline): ValidationResult {
  const description = pipeline.describe();
  return { target, valid: true, pipeline: description, warnings: pipelineWarnings(description) };
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
