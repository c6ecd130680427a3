import { CodefeedrError, redactText } from '@codefeedr/core';

/** Every error this plugin raises on purpose; `code` says which case. */
export class PostgresPluginError extends CodefeedrError {}

/** The `url` setting is not a postgres:// URL. The URL itself is never shown: it may hold a password. */
export class PostgresUrlInvalidError extends PostgresPluginError {
  constructor(problem: string) {
    super(
      'POSTGRES_URL_INVALID',
      `The PostgreSQL \`url\` setting is not usable: ${problem}. Write it as postgres://user@host:port/database; percent-encode @ / : in a password (encodeURIComponent) or, better, pass the password as \`password: \${PGPASSWORD}\`. (The URL is not shown: it may hold a password.)`,
      { problem },
    );
  }
}

/** The server could not be reached (refused, timed out, reset). Transient: a retry may succeed. */
export class PostgresUnavailableError extends PostgresPluginError {
  constructor(address: string, cause: unknown) {
    super(
      'POSTGRES_UNAVAILABLE',
      `Could not connect to PostgreSQL at ${address}: ${driverMessage(cause)}. Start the server (npm run services:up in this repo) or fix the \`url\` setting's host and port.`,
      { address },
      { cause, retryable: true },
    );
  }
}

/** The server refused the login or the database (wrong password, no such role or database). */
export class PostgresLoginError extends PostgresPluginError {
  constructor(address: string, user: string, database: string, cause: unknown) {
    super(
      'POSTGRES_LOGIN_FAILED',
      `PostgreSQL at ${address} refused user "${user}" on database "${database}": ${driverMessage(cause)}${sqlState(cause)}. Check the user, the password (\`password\` or the \`url\`) and the database name; retrying will not help.`,
      { address, user, database, sqlState: codeOf(cause) },
      { cause },
    );
  }
}

/** A statement failed for a reason other than one record's content. */
export class PostgresStatementError extends PostgresPluginError {
  /** `outcome`: what the failure left behind, e.g. that nothing of a batch was committed. */
  constructor(operation: string, target: string, cause: unknown, outcome = '') {
    const retryable = isTransientPostgresError(cause);
    super(
      'POSTGRES_STATEMENT_FAILED',
      `PostgreSQL ${operation} on ${target} failed: ${driverMessage(cause)}${sqlState(cause)}.${outcome === '' ? '' : ` ${outcome}`} ${
        retryable
          ? 'This looks transient (connection, timeout or concurrency): a retry may succeed.'
          : 'Fix the table, the query or the stage config; retrying will not help.'
      }`,
      { operation, target, sqlState: codeOf(cause) },
      { cause, retryable },
    );
  }
}

/**
 * The server refused one record for what it is (a constraint, a value its column type does
 * not accept, a NUL character in text). The sink returns it in `failed`: the runtime
 * dead-letters it with its original value and the rest of the batch is committed.
 */
export class PostgresRecordRejectedError extends PostgresPluginError {
  constructor(table: string, cause: unknown) {
    const detail = (cause as { detail?: unknown })?.detail;
    super(
      'POSTGRES_RECORD_REJECTED',
      `PostgreSQL refused a record for table ${table}: ${driverMessage(cause)}${sqlState(cause)}${
        typeof detail === 'string' ? ` (${redactText(detail)})` : ''
      }. The record went to the dead letters with its original value; fix it (or the table) and replay it from there.`,
      {
        table,
        sqlState: codeOf(cause),
        column: (cause as { column?: unknown })?.column,
        constraint: (cause as { constraint?: unknown })?.constraint,
      },
      { cause },
    );
  }
}

/** A record value that cannot be written faithfully (a BigInt, a cycle, a lone surrogate): only a transform upstream can make one. */
export class PostgresRecordUnencodableError extends PostgresPluginError {
  constructor(table: string, cause: unknown) {
    super(
      'POSTGRES_RECORD_UNENCODABLE',
      `A record for table ${table} cannot be written: ${driverMessage(cause)}. Make the value plain JSON with valid Unicode upstream (a BigInt as a string, no lone UTF-16 surrogates).`,
      { table },
      { cause },
    );
  }
}

/** Upsert and ignore modes need a key per record; this record has none. */
export class PostgresRecordKeyMissingError extends PostgresPluginError {
  constructor(table: string, keySource: string) {
    super(
      'POSTGRES_RECORD_KEY_MISSING',
      `A record for table ${table} has no key (${keySource} is empty), so it cannot be upserted. Give records a key upstream (keyBy), set \`key\` to a field path every record has, or use mode: append.`,
      { table, keySource },
    );
  }
}

/** The target table, as it exists or as configured, cannot hold the records. */
export class PostgresTableLayoutError extends PostgresPluginError {
  constructor(table: string, problem: string) {
    super('POSTGRES_TABLE_LAYOUT', `PostgreSQL table ${table} cannot be used: ${problem}.`, {
      table,
      problem,
    });
  }
}

/** A position handed to `restore` was not made by this input (or by another query shape). */
export class PostgresPositionInvalidError extends PostgresPluginError {
  constructor(expected: number, position: unknown) {
    super(
      'POSTGRES_POSITION_INVALID',
      `The checkpointed position ${JSON.stringify(position)} does not fit this input: expected { after: null } or { after: [${expected} text value(s), one per \`orderBy\` column] }. If \`orderBy\` changed, delete the stage's checkpoint to start over.`,
      { expected },
    );
  }
}

/** `key` or `timestampColumn` names a column the table or query does not have. */
export class PostgresInputColumnError extends PostgresPluginError {
  constructor(source: string, setting: string, column: string, columns: readonly string[]) {
    super(
      'POSTGRES_INPUT_COLUMN_MISSING',
      `\`${setting}\` names column "${column}", which ${source} does not have (it has ${columns.map((c) => `"${c}"`).join(', ')}). Fix \`${setting}\` or select the column in \`query\`.`,
      { source, setting, column },
    );
  }
}

/** A row's `orderBy` value is NULL: the input could not resume after it. */
export class PostgresOrderValueNullError extends PostgresPluginError {
  constructor(source: string, column: string) {
    super(
      'POSTGRES_ORDER_VALUE_NULL',
      `A row of ${source} has NULL in the \`orderBy\` column "${column}", so the input cannot resume after it. Make the column NOT NULL or filter such rows out in \`query\`.`,
      { source, column },
    );
  }
}

/** The driver error's SQLSTATE, if it has one. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

// Connection loss and concurrency conflicts; SQLSTATE classes from the PostgreSQL manual, Appendix A.
const TRANSIENT_STATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering, failing over)
  '58000', // system_error
]);
const TRANSIENT_CLASSES = new Set(['08', '53']);
const TRANSIENT_SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Whether a driver error says the connection or a concurrent transaction is to blame. */
export function isTransientPostgresError(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined) {
    if (TRANSIENT_SOCKET_CODES.has(code) || TRANSIENT_STATES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_CLASSES.has(code.slice(0, 2));
  }
  const message = error instanceof Error ? error.message : String(error);
  // pg's own words when the socket goes away or a connect times out.
  return /Connection terminated|connection timeout|timeout expired|Client has encountered a connection error|ECONNRESET/i.test(
    message,
  );
}

/**
 * Whether the server refused the data itself: class 22 (data exception: bad encoding, NUL,
 * out of range, invalid text for the type), 23 (integrity constraint), 54000 (a value
 * too large for an index). Retrying the same row can never succeed; the other rows can.
 */
export function isRecordRejection(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return code.startsWith('22') || code.startsWith('23') || code === '54000';
}

/** A driver message, with registered secrets (passwords from the config) removed. */
export function driverMessage(cause: unknown): string {
  const message =
    cause instanceof AggregateError && cause.errors.length > 0
      ? cause.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ')
      : cause instanceof Error
        ? cause.message || (codeOf(cause) ?? cause.name)
        : String(cause);
  return redactText(message);
}

function sqlState(cause: unknown): string {
  const code = codeOf(cause);
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : '';
}
