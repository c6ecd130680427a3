import type { Logger } from './logger.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are always hidden, wherever they appear in a log entry. */
const SECRET_KEY = /token|secret|password|passwd|authorization|api[-_]?key|credential/i;
const REDACTED = '[REDACTED]';
// Very short values would redact ordinary words everywhere; real secrets are longer.
const MIN_SECRET_LENGTH = 4;

const secrets = new Set<string>();
// Longest first, so a secret that contains another is hidden whole; rebuilt on registration.
let ordered: string[] = [];

/**
 * Registers a value that must never appear in logs or error messages (config values
 * interpolated from `${ENV}` are registered by the registry). The forms it takes inside a
 * URL or a JSON string are registered with it, and so is the password of a URL, so a
 * connection string is hidden however a client library prints it.
 */
export function registerSecret(value: string): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return;
  for (const form of secretForms(value)) if (form.length >= MIN_SECRET_LENGTH) secrets.add(form);
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

function secretForms(value: string): Set<string> {
  const forms = new Set([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]);
  try {
    // The userinfo encoding WHATWG URL gives a password (a little different from encodeURIComponent).
    const url = new URL('http://host');
    url.password = value;
    forms.add(url.password);
  } catch {
    // not representable: the other forms stand
  }
  try {
    forms.add(decodeURIComponent(value));
  } catch {
    // not percent-encoded text
  }
  const credentials = urlCredentials(value);
  if (credentials !== undefined) {
    for (const form of [credentials, safeDecode(credentials)]) {
      forms.add(form);
      forms.add(encodeURIComponent(form));
    }
  }
  return forms;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// A URL's scheme and the rest of its token (up to whitespace or a quote).
const URL_TOKEN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;
const HOST_AFTER_AT = /^(\[[0-9a-f:.]+\]|[a-z0-9._~-]+)(:\d*)?([/?#,;)\]].*)?$/i;

/**
 * Where the password of a `scheme://user:password@host` token is (start, end), if it has one.
 * The host follows the last `@` (a password may hold `@`, `/` or `:` unencoded), and must
 * look like a host, so `http://host:4873/@scope%2fpkg` is left alone.
 */
function passwordSpan(token: string): [number, number] | undefined {
  const start = token.indexOf('://') + 3;
  const at = token.lastIndexOf('@');
  if (at <= start) return undefined;
  const userinfo = token.slice(start, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0 || userinfo.slice(0, colon).includes('/')) return undefined;
  if (!HOST_AFTER_AT.test(token.slice(at + 1))) return undefined;
  if (colon + 1 === userinfo.length) return undefined; // `user:@host`: no password
  return [start + colon + 1, at];
}

function urlCredentials(value: string): string | undefined {
  const token = value.match(URL_TOKEN)?.[0];
  if (token === undefined || token.length !== value.trim().length) return undefined;
  const span = passwordSpan(token);
  return span === undefined ? undefined : token.slice(span[0], span[1]);
}

/**
 * Replaces every registered secret inside `text`, and the password of any URL in it (a
 * connection string no one registered is still hidden).
 */
export function redactText(text: string): string {
  let out = text;
  if (out.includes('://')) {
    out = out.replace(URL_TOKEN, (token) => {
      const span = passwordSpan(token);
      return span === undefined
        ? token
        : `${token.slice(0, span[0])}${REDACTED}${token.slice(span[1])}`;
    });
  }
  for (const secret of ordered) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/**
 * A copy of `value` with secret-named keys and registered secret values hidden. Errors become
 * `{ name, message, code, ...their own fields, cause, stack }` (redacted too) so they survive JSON.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, new WeakSet(), true) as T;
}

/**
 * Like redactSecrets, but keys are kept whatever their name: for documents whose keys are
 * names, not values (a config schema's `password` property, a metrics label).
 */
export function redactValues<T>(value: T): T {
  return redact(value, new WeakSet(), false) as T;
}

function redact(value: unknown, seen: WeakSet<object>, byKey: boolean): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: redactText(value.message) };
    for (const [key, v] of Object.entries(value)) {
      if (key === 'name' || key === 'message' || key === 'stack' || key === 'cause') continue;
      out[key] = byKey && SECRET_KEY.test(key) && v != null ? REDACTED : redact(v, seen, byKey);
    }
    if (value.cause !== undefined) out['cause'] = redact(value.cause, seen, byKey);
    if (value.stack !== undefined) out['stack'] = redactText(value.stack);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, seen, byKey));
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value instanceof Map) return redact(Object.fromEntries(value), seen, byKey);
  if (value instanceof Set) return redact([...value], seen, byKey);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] =
      byKey && SECRET_KEY.test(key) && v !== undefined && v !== null
        ? REDACTED
        : redact(v, seen, byKey);
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
