import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { cliVersion } from './cli-package.js';
import { UsageError } from './cli-errors.js';
import { CommandOutput, type CliIO } from './command-output.js';
import { ExitCode } from './exit-codes.js';
import { registerConfigCommand } from './commands/config.js';
import { registerDashboardCommand } from './commands/dashboard.js';
import { registerDeployCommand } from './commands/deploy.js';
import { registerGraphCommand } from './commands/graph.js';
import { registerManifestCommand } from './commands/manifest.js';
import { registerNewCommand } from './commands/new-plugin.js';
import { registerPluginsCommand } from './commands/plugins.js';
import { registerRunCommand } from './commands/run.js';
import { registerStagesCommand } from './commands/stages.js';
import { registerTestCommand } from './commands/test.js';
import { registerValidateCommand } from './commands/validate.js';

/** What every command action gets: parsed global options and the output channel. */
export interface CommandContext {
  readonly io: CliIO;
  output(command: Command): CommandOutput;
  /** Set by an action to report its exit status. */
  exitCode: number;
}

function buildProgram(context: CommandContext): Command {
  const program = new Command('codefeedr')
    .description('Compose and run CodeFeedr streaming pipelines from installed plugins.')
    .version(cliVersion(), '-V, --version')
    .addOption(new Option('--json', 'print machine-readable JSON on stdout'))
    .addOption(new Option('--verbose', 'debug logs, and the stack trace behind an error'))
    .addOption(new Option('-C, --cwd <dir>', 'project directory (default: the current one)'))
    .showHelpAfterError(false)
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 runtime failure, 2 invalid input (usage, pipeline file, config, plugin).',
    );
  program.configureOutput({
    writeOut: (text) => context.io.stdout.write(text),
    writeErr: (text) => context.io.stderr.write(text),
    // Usage errors are reported by main() as a UsageError (one line, code, exit 2).
    outputError: () => {},
  });
  program.exitOverride();
  registerRunCommand(program, context);
  registerDeployCommand(program, context);
  registerValidateCommand(program, context);
  registerGraphCommand(program, context);
  registerDashboardCommand(program, context);
  registerConfigCommand(program, context);
  registerTestCommand(program, context);
  registerStagesCommand(program, context);
  registerPluginsCommand(program, context);
  registerNewCommand(program, context);
  registerManifestCommand(program, context);
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/**
 * Runs `codefeedr <args>` and resolves to the exit code (the bin sets process.exitCode).
 * In-process and side-effect free apart from the command itself, so tests call it directly.
 */
export async function main(
  args: readonly string[],
  partialIO: Partial<CliIO> = {},
): Promise<number> {
  const io: CliIO = {
    stdout: partialIO.stdout ?? process.stdout,
    stderr: partialIO.stderr ?? process.stderr,
    cwd: partialIO.cwd ?? process.cwd(),
    env: partialIO.env ?? process.env,
  };
  const context: CommandContext = {
    io,
    exitCode: ExitCode.OK,
    output(command: Command) {
      const options = command.optsWithGlobals<{
        json?: boolean;
        verbose?: boolean;
        cwd?: string;
      }>();
      const cwd = options.cwd === undefined ? io.cwd : projectDir(io.cwd, options.cwd);
      // The real command moves there, as `git -C` does, so relative paths in a pipeline file
      // (`path: out.ndjson`) mean the same with -C as from inside the folder. Embedders and
      // tests pass `cwd` and keep their process's own.
      if (partialIO.cwd === undefined && cwd !== io.cwd) process.chdir(cwd);
      return new CommandOutput({ ...io, cwd }, options.json === true, options.verbose === true);
    },
  };
  const program = buildProgram(context);
  const wantsJson = args.includes('--json');
  const fallbackOutput = new CommandOutput(io, wantsJson, args.includes('--verbose'));
  try {
    await program.parseAsync([...args], { from: 'user' });
    return context.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
        return ExitCode.OK;
      // `codefeedr help run` asked for help (exit 0); help shown because a subcommand was
      // missing (`codefeedr plugins`) is a usage error.
      if (error.code === 'commander.help')
        return error.exitCode === 0 ? ExitCode.OK : ExitCode.INVALID_INPUT;
      return fallbackOutput.failure(new UsageError(error.message.replace(/^error: /, '')));
    }
    return fallbackOutput.failure(error);
  }
}

/** `--cwd <dir>` as an absolute path; a folder that is not there is a usage error, not an empty project. */
function projectDir(base: string, dir: string): string {
  const absolute = resolve(base, dir);
  let isFolder: boolean;
  try {
    isFolder = statSync(absolute).isDirectory();
  } catch {
    throw new UsageError(`--cwd ${dir}: there is no folder ${absolute}`);
  }
  if (!isFolder) throw new UsageError(`--cwd ${dir}: ${absolute} is a file, not a folder`);
  return absolute;
}
