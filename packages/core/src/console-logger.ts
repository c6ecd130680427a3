import type { Logger } from './logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are always hidden, wherever they appear in a log entry. */
const SECRET_KEY = /token|secret|password|passwd|authorization|api[-_]?key|credential/i;
const REDACTED = '[REDACTED]';
// Very short values would redact ordinary words everywhere; real secrets are longer.
const MIN_SECRET_LENGTH = 4;

const secrets = new Set<string>();

/**
 * Registers a value that must never appear in logs or error messages (config values
 * interpolated from `${ENV}` are registered by the registry).
 */
export function registerSecret(value: string): void {
  if (typeof value === 'string' && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

/** Replaces every registered secret inside `text`. */
export function redactText(text: string): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/**
 * A copy of `value` with secret-named keys and registered secret values hidden. Errors become
 * `{ name, message, code, stack }` (redacted too) so they survive JSON.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, new WeakSet()) as T;
}

function redact(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return {
      name: value.name,
      message: redactText(value.message),
      ...(code === undefined ? {} : { code }),
      ...(value.stack === undefined ? {} : { stack: redactText(value.stack) }),
    };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, seen));
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value instanceof Map) return redact(Object.fromEntries(value), seen);
  if (value instanceof Set) return redact([...value], seen);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && v !== undefined && v !== null ? REDACTED : redact(v, seen);
  }
  return out;
}

export interface ConsoleLoggerOptions {
  level?: LogLevel;
  /** `json`: one JSON object per line; `pretty`: human lines; `auto`: pretty on a TTY. */
  format?: 'json' | 'pretty' | 'auto';
  /** Where lines go (default: process.stderr, keeping stdout for data). */
  write?: (line: string) => void;
  fields?: Record<string, unknown>;
}

/** Logger writing JSON lines (or pretty lines on a TTY) with secrets redacted. */
export class ConsoleLogger implements Logger {
  private readonly minLevel: number;
  private readonly pretty: boolean;
  private readonly write: (line: string) => void;
  private readonly fields: Record<string, unknown>;

  constructor(private readonly options: ConsoleLoggerOptions = {}) {
    this.minLevel =
      LEVELS[options.level ?? (process.env.CODEFEEDR_LOG_LEVEL as LogLevel) ?? 'info'] ?? 20;
    const format = options.format ?? 'auto';
    this.pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
    this.write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.fields = options.fields ?? {};
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.log('debug', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.log('info', message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.log('warn', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.log('error', message, fields);
  }

  child(fields: Record<string, unknown>): Logger {
    return new ConsoleLogger({ ...this.options, fields: { ...this.fields, ...fields } });
  }

  private log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (LEVELS[level] < this.minLevel) return;
    const safe = redactSecrets({ ...this.fields, ...fields });
    const text = redactText(message);
    if (this.pretty) {
      const extra = Object.entries(safe)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      this.write(
        `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${text}${extra ? ` ${extra}` : ''}`,
      );
    } else {
      this.write(JSON.stringify({ time: new Date().toISOString(), level, msg: text, ...safe }));
    }
  }
}

/** A logger that discards everything (tests, embedding). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
