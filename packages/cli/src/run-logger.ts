import { ConsoleLogger, type Logger } from '@codefeedr/core';

/** An Error as a log field without its stack: message and code are what a user acts on. */
function withoutStacks(
  fields: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (!fields) return fields;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      const code = (value as { code?: unknown }).code;
      out[key] = {
        name: value.name,
        message: value.message,
        ...(code === undefined ? {} : { code }),
      };
    } else {
      out[key] = value;
    }
  }
  return out;
}

/**
 * The runtime's logger for `codefeedr run`: core's ConsoleLogger (stderr, secrets
 * redacted, pretty on a terminal) with error stacks left out unless --verbose, so an
 * expected failure never prints a stack trace. (The run's own failure is not logged at all:
 * `run` passes `logFailure: false` and prints the error itself once the run has stopped.)
 */
export class RunLogger implements Logger {
  constructor(
    private readonly inner: Logger,
    private readonly verbose: boolean,
  ) {}

  /**
   * `format` is decided by the CLI, not by whether stderr is a terminal: human log lines
   * beside the human summary, JSON lines beside `--json`, never both on one stream.
   */
  static create(
    verbose: boolean,
    format: 'json' | 'pretty',
    write: (line: string) => void,
  ): RunLogger {
    return new RunLogger(
      new ConsoleLogger({ write, format, level: verbose ? 'debug' : 'info' }),
      verbose,
    );
  }

  private fields(fields?: Record<string, unknown>): Record<string, unknown> | undefined {
    return this.verbose ? fields : withoutStacks(fields);
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.inner.debug(message, this.fields(fields));
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.inner.info(message, this.fields(fields));
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.inner.warn(message, this.fields(fields));
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.inner.error(message, this.fields(fields));
  }
  child(fields: Record<string, unknown>): Logger {
    return new RunLogger(this.inner.child(fields), this.verbose);
  }
}
