import { Command, CommanderError, Option } from 'commander';
import { cliVersion } from './cli-package.js';
import { UsageError } from './cli-errors.js';
import { CommandOutput, type CliIO } from './command-output.js';
import { ExitCode } from './exit-codes.js';
import { registerGraphCommand } from './commands/graph.js';
import { registerManifestCommand } from './commands/manifest.js';
import { registerNewCommand } from './commands/new-plugin.js';
import { registerPluginsCommand } from './commands/plugins.js';
import { registerRunCommand } from './commands/run.js';
import { registerStagesCommand } from './commands/stages.js';
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
    .addOption(new Option('--verbose', 'show stack traces of unexpected errors'))
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
  registerValidateCommand(program, context);
  registerGraphCommand(program, context);
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
      return new CommandOutput(
        { ...io, cwd: options.cwd ? resolvePath(io.cwd, options.cwd) : io.cwd },
        options.json === true,
        options.verbose === true,
      );
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
      // Help shown because a subcommand was missing (`codefeedr plugins`): a usage error.
      if (error.code === 'commander.help') return ExitCode.INVALID_INPUT;
      return fallbackOutput.failure(new UsageError(error.message.replace(/^error: /, '')));
    }
    return fallbackOutput.failure(error);
  }
}

function resolvePath(base: string, dir: string): string {
  return dir.startsWith('/') ? dir : `${base.replace(/\/$/, '')}/${dir}`;
}
