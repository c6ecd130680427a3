// The CLI reference, from the commander program @codefeedr/cli really runs: `main()` builds it
// and calls `program.parseAsync`; for the length of one call that method is replaced (on the
// commander copy the CLI itself imports) by one that hands the program over without parsing.
// Then `program.commands` is walked. A command added to the CLI appears here by itself.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Argument, Command, Option } from 'commander';
import { main } from '@codefeedr/cli';
import { escapeForPage as escape } from './markdown-escape.ts';

type CommandClass = { prototype: { parseAsync: (...args: unknown[]) => Promise<unknown> } };

/** The `codefeedr` program, as `main()` builds it. */
export async function cliProgram(repo: string): Promise<Command> {
  const require = createRequire(join(repo, 'packages', 'cli', 'package.json'));
  const { Command: CommandClass } = require('commander') as { Command: CommandClass };
  const parseAsync = CommandClass.prototype.parseAsync;
  let program: Command | undefined;
  CommandClass.prototype.parseAsync = async function (this: Command) {
    // The first (outermost) parseAsync is the program's own.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    program ??= this;
    return this;
  };
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  try {
    await main([], { stdout: quiet as never, stderr: quiet as never, cwd: repo, env: {} });
  } finally {
    CommandClass.prototype.parseAsync = parseAsync;
  }
  if (!program) throw new Error('@codefeedr/cli main() did not build a commander program');
  return program;
}

/** The page's anchor of a command: `codefeedr plugins add` → `plugins-add`. */
export function commandAnchor(path: string[]): string {
  return path.join('-');
}

function argumentLabel(argument: Argument): string {
  const name = `${argument.name()}${argument.variadic ? '...' : ''}`;
  return argument.required ? `<${name}>` : `[${name}]`;
}

function optionRow(option: Option): string {
  const details: string[] = [];
  if (option.argChoices)
    details.push(`one of ${option.argChoices.map((c) => `\`${c}\``).join(', ')}`);
  const value: unknown = option.defaultValue;
  if (value !== undefined && !(Array.isArray(value) && value.length === 0) && value !== true)
    details.push(`default \`${JSON.stringify(value)}\``);
  const text = [escape(option.description ?? ''), ...details].filter(Boolean).join('; ');
  return `| <code>${escape(option.flags)}</code> | ${text} |`;
}

function commandSection(command: Command, path: string[], depth: number): string[] {
  const heading = '#'.repeat(Math.min(depth, 4));
  const usage = `codefeedr ${path.join(' ')} ${command.usage()}`.replace(/\s+/g, ' ').trim();
  const lines = [
    `${heading} codefeedr ${path.join(' ')} {#${commandAnchor(path)}}`,
    '',
    escape(command.description()),
    '',
    `<pre class="cli-usage"><code>${escape(usage)}</code></pre>`,
    '',
  ];
  const args = command.registeredArguments;
  if (args.length > 0) {
    lines.push('| argument | meaning |', '| --- | --- |');
    for (const a of args)
      lines.push(`| <code>${escape(argumentLabel(a))}</code> | ${escape(a.description ?? '')} |`);
    lines.push('');
  }
  const options = command.options.filter((o) => !o.hidden);
  if (options.length > 0) {
    lines.push('| option | meaning |', '| --- | --- |', ...options.map(optionRow), '');
  }
  for (const sub of command.commands)
    lines.push(...commandSection(sub, [...path, sub.name()], depth + 1));
  return lines;
}

export async function cliReferencePage(repo: string): Promise<string> {
  const program = await cliProgram(repo);
  const commands = program.commands.filter((c) => c.name() !== 'help');
  const index = commands.flatMap((c) => [
    `| [\`codefeedr ${c.name()}\`](#${commandAnchor([c.name()])}) | ${escape(c.description())} |`,
    ...c.commands.map(
      (s) =>
        `| [\`codefeedr ${c.name()} ${s.name()}\`](#${commandAnchor([c.name(), s.name()])}) | ${escape(s.description())} |`,
    ),
  ]);
  return [
    '---',
    'outline: [2, 3]',
    '---',
    '',
    '# CLI reference',
    '',
    `Generated at build time from the command definitions of \`@codefeedr/cli\` (commander): every`,
    'command, argument and option the `codefeedr` command has, with the text its `--help` prints.',
    'Every command also has `--help`, and `codefeedr help <command>` prints the same.',
    '',
    '| command | what it does |',
    '| --- | --- |',
    ...index,
    '',
    '## Global options {#global-options}',
    '',
    escape(program.description()),
    '',
    '| option | meaning |',
    '| --- | --- |',
    ...program.options.map(optionRow),
    '',
    'Exit codes: `0` success (a run stopped by Ctrl-C or SIGTERM included), `1` runtime failure,',
    '`2` invalid input (usage, pipeline file, config, plugin). Each error code and the exit code it',
    'leads to are in the [error codes](/reference/error-codes) reference.',
    '',
    ...commands.flatMap((c) => commandSection(c, [c.name()], 2)),
  ].join('\n');
}
