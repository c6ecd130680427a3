import { isCodefeedrError, redactSecrets, redactText, redactValues } from '@codefeedr/core';
import pc from 'picocolors';
import { exitCodeFor, type ExitCodeValue } from './exit-codes.js';

export interface TextStream {
  write(text: string): unknown;
  isTTY?: boolean | undefined;
}

export interface CliIO {
  stdout: TextStream;
  stderr: TextStream;
  /** Project directory (default process.cwd()). */
  cwd: string;
  env: Record<string, string | undefined>;
}

export type Colors = ReturnType<typeof pc.createColors>;

/**
 * Everything a command prints goes through here: human text (coloured only on a TTY,
 * honouring NO_COLOR/FORCE_COLOR via picocolors' rules) or, with --json, one JSON
 * document on stdout for scripts.
 */
export class CommandOutput {
  readonly colors: Colors;

  constructor(
    readonly io: CliIO,
    readonly json: boolean,
    readonly verbose: boolean,
  ) {
    const noColor = 'NO_COLOR' in io.env || io.env['TERM'] === 'dumb';
    const force = 'FORCE_COLOR' in io.env && io.env['FORCE_COLOR'] !== '0';
    this.colors = pc.createColors(!json && !noColor && (force || io.stdout.isTTY === true));
  }

  /** A line of human output on stdout (suppressed in --json mode). */
  line(text = ''): void {
    if (!this.json) this.io.stdout.write(`${text}\n`);
  }

  /** A line of status on stderr (never mixed into data on stdout). */
  note(text: string): void {
    if (!this.json) this.io.stderr.write(`${text}\n`);
  }

  /**
   * The command's result as JSON (in --json mode). Every string in it is redacted; key names
   * are kept (a config schema's `password` property is a name, not a secret).
   */
  data(value: unknown): void {
    if (this.json) this.io.stdout.write(`${JSON.stringify(redactValues(value), null, 2)}\n`);
  }

  /**
   * Reports a failure and returns the exit code. A CodefeedrError prints its message and
   * code, never a stack; anything else prints one line, with the stack under --verbose.
   */
  failure(error: unknown): ExitCodeValue {
    const code = exitCodeFor(error);
    const expected = isCodefeedrError(error);
    // Redacted as a whole document (message, problems, every field), not line by line.
    const shown = redactSecrets({
      code: expected ? error.code : 'UNEXPECTED',
      message: error instanceof Error ? error.message : String(error),
      problems: expected ? (error.details['problems'] as unknown) : undefined,
      stack: error instanceof Error ? error.stack : undefined,
    });
    const message = redactText(shown.message);
    if (this.json) {
      this.io.stdout.write(
        `${JSON.stringify(
          {
            ok: false,
            error: {
              code: shown.code,
              message,
              ...(shown.problems === undefined ? {} : { problems: shown.problems }),
            },
          },
          null,
          2,
        )}\n`,
      );
      return code;
    }
    const c = this.colors;
    if (expected) {
      this.io.stderr.write(`${c.red('error')} ${message} ${c.dim(`[${shown.code}]`)}\n`);
      // --verbose: where an error wrapped from a client library came from.
      const cause = (error as Error).cause;
      if (this.verbose && cause instanceof Error && cause.stack)
        this.io.stderr.write(`${c.dim(`caused by ${redactText(cause.stack)}`)}\n`);
    } else {
      this.io.stderr.write(`${c.red('error')} unexpected failure: ${message.split('\n')[0]}\n`);
      if (this.verbose && shown.stack) {
        this.io.stderr.write(`${c.dim(shown.stack)}\n`);
      } else {
        this.io.stderr.write(c.dim('Run again with --verbose to see the stack trace.\n'));
      }
    }
    return code;
  }
}

/** Left-aligned columns for human tables. */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
