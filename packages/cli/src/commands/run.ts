import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import {
  CodefeedrError,
  type Pipeline,
  type PipelineMetricsSnapshot,
  type RunSummary,
} from '@codefeedr/core';
import { discoverPlugins, loadPipeline } from '@codefeedr/registry';
import { parseDocument } from 'yaml';
import type { CommandContext } from '../program.js';
import { formatTable, type CommandOutput } from '../command-output.js';
import { UsageError } from '../cli-errors.js';
import { checkPipelineFile } from '../pipeline-source.js';
import { RunLogger } from '../run-logger.js';
import { collect } from './validate.js';

interface RunOptions {
  mode?: 'inline' | 'local';
  stage?: string;
  instance?: string;
  checkpointDir?: string;
  set: string[];
  metricsPort?: string;
  progress?: boolean;
}

/** A prebuilt pipeline as a `pipeline` component exports it. */
interface PipelineComponent {
  create(config?: unknown): unknown;
}

function isPipeline(value: unknown): value is Pipeline {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Pipeline).run === 'function' &&
    typeof (value as Pipeline).describe === 'function'
  );
}

/** `key=value` pairs (values parsed as YAML scalars) into a config object with dotted paths. */
function configFromSets(sets: readonly string[]): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set ${set}: expected key=value`);
    const keys = set.slice(0, eq).split('.');
    let target = config;
    for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
    target[keys[keys.length - 1]!] = parseDocument(set.slice(eq + 1)).toJS();
  }
  return config;
}

async function prebuiltPipeline(
  out: CommandOutput,
  name: string,
  sets: readonly string[],
): Promise<Pipeline> {
  const catalog = discoverPlugins(out.io.cwd);
  const component = catalog.resolve(name, ['pipeline']);
  if (component.kind !== 'pipeline') {
    throw new UsageError(
      `"${name}" is a ${component.kind} component and "${name}" is not a file; give a pipeline file or a prebuilt pipeline name`,
    );
  }
  const value = (await catalog.load(component)) as PipelineComponent;
  let built = await value.create(configFromSets(sets));
  if (!isPipeline(built) && typeof (built as { build?: unknown })?.build === 'function') {
    built = (built as { build(): unknown }).build();
  }
  if (!isPipeline(built)) {
    throw new CodefeedrError(
      'PIPELINE_COMPONENT_INVALID',
      `Prebuilt pipeline ${component.id} did not create a Pipeline; report this to its maintainers.`,
    );
  }
  return built;
}

function progressLine(metrics: PipelineMetricsSnapshot, startedAt: number): string {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(0);
  const parts = metrics.stages.map(
    (s) => `${s.stage} ${s.kind === 'input' ? s.recordsOut : s.recordsIn}`,
  );
  return `${seconds}s  ${parts.join('  ')}`;
}

function printSummary(out: CommandOutput, summary: RunSummary): void {
  const c = out.colors;
  out.note(
    `${summary.status === 'finished' ? c.green('✓ finished') : c.yellow('■ stopped')} pipeline "${summary.pipeline}" (${summary.mode}) in ${(summary.durationMs / 1000).toFixed(2)}s`,
  );
  const rows = summary.metrics.stages.map((s) => [
    s.stage,
    s.kind,
    String(s.recordsIn),
    String(s.recordsOut),
    String(s.deadLettered),
    String(s.errors),
  ]);
  for (const line of formatTable([
    ['STAGE', 'KIND', 'IN', 'OUT', 'DEAD-LETTERED', 'ERRORS'],
    ...rows,
  ]))
    out.note(line);
}

export function registerRunCommand(program: Command, context: CommandContext): void {
  program
    .command('run')
    .description(
      'Run a pipeline file, or a prebuilt pipeline from an installed plugin, until its inputs end or Ctrl-C.',
    )
    .argument('<pipeline>', 'pipeline file (YAML/JSON) or prebuilt pipeline name')
    .addOption(
      new Option(
        '-m, --mode <mode>',
        'inline: one process, in-memory edges; local: every edge through the buffer',
      ).choices(['inline', 'local']),
    )
    .option('-s, --stage <id>', 'run only this stage, as a worker (scale out by starting more)')
    .option(
      '--instance <name>',
      "with --stage: this worker's name, unique among the stage's workers (checkpoints and transactional ids; default 0)",
    )
    .option(
      '--checkpoint-dir <dir>',
      'keep checkpoints (positions, keyed state, timers) in this directory, so a restart resumes',
    )
    .option(
      '--set <key=value...>',
      'override config: stageId.key=value (pipeline file) or key=value (prebuilt)',
      collect,
      [],
    )
    .option('--metrics-port <port>', 'serve Prometheus /metrics and /metrics.json on this port')
    .option('--no-progress', 'no live progress line, even on a terminal')
    .action(async (target: string, options: RunOptions, command: Command) => {
      const out = context.output(command);
      let timer: NodeJS.Timeout | undefined;
      try {
        if (options.stage !== undefined && options.mode !== undefined) {
          throw new UsageError(
            '--stage runs one stage as a worker; it cannot be combined with --mode',
          );
        }
        if (options.instance !== undefined && options.stage === undefined) {
          throw new UsageError('--instance names one worker of a stage; it needs --stage <id>');
        }
        const isFile = existsSync(resolve(out.io.cwd, target)) || /\.(ya?ml|json)$/i.test(target);
        let pipeline: Pipeline;
        if (isFile) {
          const { catalog, spec, resolved } = checkPipelineFile(
            out.io.cwd,
            target,
            out.io.env,
            options.set,
          );
          pipeline = await loadPipeline(spec, catalog, resolved);
        } else {
          pipeline = await prebuiltPipeline(out, target, options.set);
        }
        const metricsPort =
          options.metricsPort === undefined ? undefined : Number(options.metricsPort);
        if (
          metricsPort !== undefined &&
          (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65_535)
        ) {
          throw new UsageError(`--metrics-port ${options.metricsPort} is not a port number`);
        }
        const startedAt = Date.now();
        const live = options.progress !== false && !out.json && out.io.stderr.isTTY === true;
        if (live) {
          timer = setInterval(
            () => out.io.stderr.write(`\r\x1b[2K${progressLine(pipeline.metrics(), startedAt)}`),
            500,
          );
        }
        const summary = await pipeline.run({
          mode: options.stage !== undefined ? 'worker' : (options.mode ?? 'inline'),
          ...(options.stage !== undefined ? { stage: options.stage } : {}),
          ...(options.instance !== undefined ? { instance: options.instance } : {}),
          ...(options.checkpointDir !== undefined
            ? { checkpointDir: resolve(out.io.cwd, options.checkpointDir) }
            : {}),
          handleSignals: true,
          logger: RunLogger.create(out.verbose, (line) => out.io.stderr.write(`${line}\n`)),
          ...(metricsPort !== undefined
            ? {
                metricsPort,
                onMetricsListening: (url: string) => out.note(`metrics at ${url}/metrics`),
              }
            : {}),
        });
        if (live) out.io.stderr.write('\r\x1b[2K');
        out.data({ ok: true, summary });
        printSummary(out, summary);
      } catch (error) {
        if (timer) out.io.stderr.write('\n');
        context.exitCode = out.failure(error);
      } finally {
        if (timer) clearInterval(timer);
      }
    });
}
