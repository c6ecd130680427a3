import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CodefeedrError, isCodefeedrError, type Pipeline, type RunSummary } from '@codefeedr/core';
import type { CommandContext } from '../program.js';
import { formatTable, type CommandOutput } from '../command-output.js';
import { UsageError } from '../cli-errors.js';
import { DeadLetterReport, type StageDeadLetters } from '../dead-letter-report.js';
import { checkFolderOption, openPipeline } from '../pipeline-source.js';
import { RunLogger } from '../run-logger.js';
import { RunProgress } from '../run-progress.js';
import { startDashboardServer, type DashboardServer } from '../dashboard-server.js';
import { dashboardPort } from './dashboard.js';
import { collect } from './validate.js';

interface RunOptions {
  mode?: 'inline' | 'local';
  stage?: string;
  instance?: string;
  stateStore?: 'file' | 'buffer';
  stateBackend?: 'memory' | 'disk';
  stateDir?: string;
  checkpointDir?: string;
  splits?: string;
  set: string[];
  metricsPort?: string;
  metricsHost?: string;
  dashboard?: string | true;
  progress?: boolean;
}

/**
 * A run that ended, but not well: a stage dead-lettered every record it got. Exit 1, after
 * the summary: nothing useful was written, which a script must not mistake for success. (An
 * input that ends in the middle of its data — a truncated gzip — fails its stage in core.)
 */
export class RunIncompleteError extends CodefeedrError {
  constructor(reasons: readonly string[]) {
    super(
      'RUN_INCOMPLETE',
      `The run ended but did not succeed: ${reasons.join('; ')}. The dead letters keep every such record with its original value: fix the cause and replay them.`,
      { reasons },
    );
  }
}

/** Why a finished run is not a success, if it is not (see RunIncompleteError). */
function incompleteReasons(summary: RunSummary): string[] {
  const reasons: string[] = [];
  for (const s of summary.metrics.stages) {
    if (s.deadLettered === 0) continue;
    const received = s.kind === 'input' ? s.recordsOut + s.deadLettered : s.recordsIn;
    const passed = s.kind === 'input' ? s.recordsOut : s.recordsIn - s.deadLettered;
    if (passed <= 0 && received > 0)
      reasons.push(`stage "${s.stage}" dead-lettered all ${s.deadLettered} of its records`);
  }
  return reasons;
}

function printSummary(
  out: CommandOutput,
  summary: RunSummary,
  deadLetters: readonly StageDeadLetters[],
  incomplete: boolean,
): void {
  const c = out.colors;
  const status = incomplete
    ? c.red('✗ ended without success:')
    : summary.status === 'finished'
      ? deadLetters.length > 0
        ? c.yellow('✓ finished with dead letters:')
        : c.green('✓ finished')
      : c.yellow('■ stopped');
  out.note(
    `${status} pipeline "${summary.pipeline}" (${summary.mode}) in ${(summary.durationMs / 1000).toFixed(2)}s`,
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
  for (const { stage, count, location, reasons } of deadLetters) {
    out.note(c.yellow(`! ${count} dead letter(s) of stage "${stage}" are in ${location}`));
    for (const reason of reasons) out.note(`    ${reason.at}: ${reason.message} [${reason.code}]`);
    if (count > reasons.length && reasons.length > 0)
      out.note(c.dim(`    … ${count - reasons.length} more in ${location}`));
  }
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
      '--splits <n>',
      "inline: run the pipeline's parallel stages n times, one worker thread each, on its share of the input (a prebuilt pipeline that supports it, e.g. github-summary over many hour files); no checkpoints",
    )
    .option(
      '--instance <name>',
      "with --stage: this worker's name, unique among the stage's workers (checkpoints and transactional ids; default 0)",
    )
    .option(
      '--checkpoint-dir <dir>',
      'keep checkpoints (positions, keyed state, timers) in this directory, so a restart resumes',
    )
    .addOption(
      new Option(
        '--state-store <store>',
        "where keyed state lives, per input partition so it follows a partition to another worker: file (under --checkpoint-dir, the default with it) or buffer (the buffer's own servers, e.g. Redis: shared across machines)",
      ).choices(['file', 'buffer']),
    )
    .addOption(
      new Option(
        '--state-backend <backend>',
        'where keyed state lives while the run holds it: memory (default) or disk (state larger than memory: a SQLite file per keyed operator, deleted at the end; checkpoints are the same)',
      ).choices(['memory', 'disk']),
    )
    .option(
      '--state-dir <dir>',
      'with --state-backend disk: the folder of its files (default the system temp folder)',
    )
    .option(
      '--set <key=value...>',
      'override config: stageId.key=value (pipeline file) or key=value (prebuilt)',
      collect,
      [],
    )
    .option('--metrics-port <port>', 'serve Prometheus /metrics and /metrics.json on this port')
    .option(
      '--metrics-host <host>',
      'with --metrics-port: the address to listen on (default 127.0.0.1; 0.0.0.0 in a container)',
    )
    .option(
      '--dashboard [port]',
      'serve a live dashboard (the DAG with per-stage figures) on 127.0.0.1, on this port or any free one',
    )
    .option('--no-progress', 'no live progress line, even on a terminal')
    .action(async (target: string, options: RunOptions, command: Command) => {
      const out = context.output(command);
      let timer: NodeJS.Timeout | undefined;
      let dashboard: DashboardServer | undefined;
      try {
        if (options.stage !== undefined && options.mode !== undefined) {
          throw new UsageError(
            '--stage runs one stage as a worker; it cannot be combined with --mode',
          );
        }
        if (options.instance !== undefined && options.stage === undefined) {
          throw new UsageError('--instance names one worker of a stage; it needs --stage <id>');
        }
        const splits = options.splits === undefined ? undefined : Number(options.splits);
        if (splits !== undefined && (!/^\d+$/.test(options.splits!) || splits < 1))
          throw new UsageError(`--splits ${options.splits} is not a whole number of at least 1`);
        if (splits !== undefined && (options.stage !== undefined || options.mode === 'local'))
          throw new UsageError(
            '--splits is for inline runs: on a buffer, run more workers of a stage (--stage) instead',
          );
        const metricsPort =
          options.metricsPort === undefined ? undefined : Number(options.metricsPort);
        if (
          metricsPort !== undefined &&
          (!/^\d+$/.test(options.metricsPort!) || metricsPort < 0 || metricsPort > 65_535)
        ) {
          throw new UsageError(`--metrics-port ${options.metricsPort} is not a port number`);
        }
        const dashboardOn =
          options.dashboard === undefined
            ? undefined
            : dashboardPort('--dashboard', options.dashboard);
        const checkpointDir =
          options.checkpointDir === undefined
            ? undefined
            : checkFolderOption('--checkpoint-dir', out.io.cwd, options.checkpointDir);
        const stateDir =
          options.stateDir === undefined
            ? undefined
            : checkFolderOption('--state-dir', out.io.cwd, options.stateDir);
        if (stateDir !== undefined && options.stateBackend !== 'disk')
          throw new UsageError(
            '--state-dir is for --state-backend disk: add it, or drop --state-dir',
          );
        const { pipeline } = await openPipeline(out.io.cwd, target, out.io.env, options.set);
        if (out.json) refuseStdoutStages(pipeline, options.stage);
        const report = new DeadLetterReport(pipeline);
        if (dashboardOn !== undefined) {
          // Bound before the run starts, so a taken port fails at once. It shows the run's own
          // metrics endpoint (on a free port unless --metrics-port names one), as it would a worker's.
          dashboard = await startDashboardServer({ targets: [], port: dashboardOn });
          out.note(`dashboard at ${dashboard.url}/`);
        }
        const startedAt = Date.now();
        const live = options.progress !== false && !out.json && out.io.stderr.isTTY === true;
        if (live) {
          const progress = new RunProgress(startedAt);
          timer = setInterval(
            () => out.io.stderr.write(`\r\x1b[2K${progress.line(pipeline.metrics())}`),
            500,
          );
        }
        const summary = await runWithContext(pipeline, {
          mode: options.stage !== undefined ? 'worker' : (options.mode ?? 'inline'),
          ...(options.stage !== undefined ? { stage: options.stage } : {}),
          ...(options.instance !== undefined ? { instance: options.instance } : {}),
          ...(checkpointDir !== undefined ? { checkpointDir } : {}),
          ...(splits !== undefined ? { splits } : {}),
          ...(options.stateStore !== undefined ? { stateStore: options.stateStore } : {}),
          ...(options.stateBackend !== undefined ? { stateBackend: options.stateBackend } : {}),
          ...(stateDir !== undefined ? { stateDir } : {}),
          handleSignals: true,
          // The CLI prints the run's error itself once the run has stopped (once, not twice).
          logFailure: false,
          // One format per stream: JSON log lines beside --json, human lines beside the summary.
          logger: RunLogger.create(out.verbose, out.json ? 'json' : 'pretty', (line) =>
            out.io.stderr.write(`${line}\n`),
          ),
          ...(metricsPort !== undefined || dashboard !== undefined
            ? {
                metricsPort: metricsPort ?? 0,
                ...(options.metricsHost !== undefined ? { metricsHost: options.metricsHost } : {}),
                onMetricsListening: (url: string) => {
                  if (metricsPort !== undefined) out.note(`metrics at ${url}/metrics`);
                  dashboard?.setTargets([url]);
                },
              }
            : {}),
        });
        if (timer) {
          clearInterval(timer);
          timer = undefined;
          out.io.stderr.write('\r\x1b[2K');
        }
        const deadLetters = report.stages(summary);
        const reasons = incompleteReasons(summary);
        const failure = reasons.length > 0 ? new RunIncompleteError(reasons) : undefined;
        printSummary(out, summary, deadLetters, failure !== undefined);
        if (failure) {
          if (out.json) {
            out.data({
              ok: false,
              error: { code: failure.code, message: failure.message },
              summary,
              deadLetters,
            });
            context.exitCode = 1;
          } else {
            context.exitCode = out.failure(failure);
          }
          return;
        }
        out.data({ ok: true, summary, deadLetters });
      } catch (error) {
        if (timer) out.io.stderr.write('\n');
        context.exitCode = out.failure(error);
      } finally {
        if (timer) clearInterval(timer);
        await dashboard?.close();
      }
    });
}

/**
 * A run failed with an error no CodeFeedr component described (a client library's own, such
 * as kafkajs' "Connection error: connect ECONNREFUSED"): one error that names the pipeline and
 * its buffer, says what to check, and keeps the original as its cause.
 */
export class RunFailedError extends CodefeedrError {
  constructor(pipeline: Pipeline, cause: unknown) {
    const buffer = pipeline.definition.buffer;
    const bufferName =
      buffer === undefined
        ? undefined
        : 'component' in buffer
          ? buffer.component.name
          : buffer.instance.kind;
    const message = cause instanceof Error ? cause.message : String(cause);
    const file = fileProblem(pipeline, cause);
    super(
      'RUN_FAILED',
      file !== undefined
        ? `Pipeline "${pipeline.name}" failed: ${file}.`
        : `Pipeline "${pipeline.name}" failed: ${message.split('\n')[0]}.` +
            (bufferName === undefined
              ? ' A stage raised it without saying which; run again with --verbose to see where.'
              : ` If it is about a connection, check that the ${bufferName} buffer's servers are up and its addresses (\`buffer.with\`) are right.`) +
            ' The component raised an error without a CodeFeedr code: tell its maintainers, so it names itself next time.',
      {
        pipeline: pipeline.name,
        ...(bufferName === undefined ? {} : { buffer: bufferName }),
      },
      { cause },
    );
  }
}

const FILE_ERRORS: Record<string, string> = {
  EISDIR: 'is a folder, where a file is needed',
  ENOTDIR: 'has a file where a folder is needed in its path',
  EACCES: 'cannot be opened: permission denied',
  EPERM: 'cannot be opened: the file system does not allow it',
  ENOENT: 'does not exist',
  ENAMETOOLONG: 'is too long a path for the file system',
  EROFS: 'is on a read-only file system',
  ENOSPC: 'cannot be written: the disk is full',
};

/**
 * A file-system error (EISDIR, EACCES, …) in words, with the stage and config key whose value
 * is the path, when one is: `stage "out" (with.path): adir is a folder, where a file is needed`.
 */
function fileProblem(pipeline: Pipeline, cause: unknown): string | undefined {
  const { code, path } = (cause ?? {}) as { code?: unknown; path?: unknown };
  if (typeof code !== 'string' || typeof path !== 'string' || !(code in FILE_ERRORS))
    return undefined;
  const owners: string[] = [];
  const visit = (value: unknown, keys: string[], stage: string) => {
    if (typeof value === 'string') {
      if (value === path || resolve(value) === resolve(path))
        owners.push(`stage "${stage}" (with.${keys.join('.')})`);
    } else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) visit(v, [...keys, k], stage);
    }
  };
  for (const stage of pipeline.stages) visit(stage.config, [], stage.id);
  return `${owners.length > 0 ? `${owners.join(', ')}: ` : ''}${path} ${FILE_ERRORS[code]} (${code}); fix the path or its permissions`;
}

async function runWithContext(
  pipeline: Pipeline,
  options: Parameters<Pipeline['run']>[0],
): Promise<RunSummary> {
  try {
    return await pipeline.run(options);
  } catch (error) {
    if (isCodefeedrError(error)) throw error;
    throw new RunFailedError(pipeline, error);
  }
}

/**
 * `--json` promises one JSON document on stdout; a printer stage writes its records there
 * too, so the two cannot share it.
 */
function refuseStdoutStages(pipeline: Pipeline, worker: string | undefined): void {
  const printers = pipeline.stages.filter(
    (s) =>
      s.kind === 'output' && s.component === 'printer' && (worker === undefined || s.id === worker),
  );
  if (printers.length === 0) return;
  throw new UsageError(
    `--json puts one JSON document on stdout, and printer stage${printers.length > 1 ? 's' : ''} ${printers.map((s) => `"${s.id}"`).join(', ')} print${printers.length > 1 ? '' : 's'} records there too. Run without --json, or write the records to a file (use: ndjson-file, with: { path: out.ndjson })`,
  );
}
