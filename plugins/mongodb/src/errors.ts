import { CodefeedrError, redactText } from '@codefeedr/core';
import {
  MongoError,
  MongoNetworkError,
  MongoNetworkTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
} from 'mongodb';

/**
 * Server error codes a retry can get past: elections, shutdowns, timeouts, write conflicts
 * (the names are MongoDB's own, see its error_codes.yml).
 */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  24, // LockTimeout
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed (wtimeout)
  89, // NetworkTimeout
  91, // ShutdownInProgress
  112, // WriteConflict
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** Authentication and authorization failures: retrying with the same credentials cannot help. */
const AUTH_CODES: ReadonlySet<number> = new Set([
  13, // Unauthorized
  18, // AuthenticationFailed
]);

/** Whether a server error code (a command's or one write's) names a transient condition. */
export function isTransientCode(code: unknown): boolean {
  return typeof code === 'number' && TRANSIENT_CODES.has(code);
}

/** Whether the driver or the server says the same call may succeed if tried again. */
export function isTransientMongoError(error: unknown): boolean {
  if (
    error instanceof MongoNetworkError ||
    error instanceof MongoNetworkTimeoutError ||
    error instanceof MongoServerSelectionError
  )
    return true;
  if (error instanceof MongoError) {
    if (error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('ResetPool')) return true;
    return isTransientCode(error.code);
  }
  return false;
}

/** The driver's message with every registered secret (the URL's password) hidden. */
export function safeMessage(cause: unknown): string {
  return redactText(cause instanceof Error ? cause.message : String(cause));
}

/** Every error this plugin raises on purpose; `code` says which case. */
export class MongoPluginError extends CodefeedrError {}

/** The connection string cannot be used. Never repeats the string: it may hold a password. */
export class MongoConnectionStringError extends MongoPluginError {
  constructor(problem: string, cause?: unknown) {
    super(
      'MONGODB_URL_INVALID',
      `The MongoDB connection string is invalid: ${problem}. Write it as mongodb://[user:password@]host[:port][,host:port...][/authdb][?options] with user and password percent-encoded (encodeURIComponent), and pass the password through \${ENV}.`,
      { problem },
      { cause },
    );
  }
}

/** No server could be reached in time (refused, unknown host, timeout). Transient. */
export class MongoUnavailableError extends MongoPluginError {
  constructor(hosts: string, timeoutMs: number, cause: unknown) {
    super(
      'MONGODB_UNAVAILABLE',
      `Could not reach MongoDB at ${hosts} within ${timeoutMs} ms: ${safeMessage(cause)}. Check that the server runs and listens there (npm run services:up in this repo), or fix the host and port in \`url\`.`,
      { hosts, timeoutMs },
      { cause, retryable: true },
    );
  }
}

/** The server refused the credentials or the user lacks a privilege. Permanent. */
export class MongoAuthError extends MongoPluginError {
  constructor(hosts: string, cause: unknown) {
    super(
      'MONGODB_AUTH_FAILED',
      `MongoDB at ${hosts} refused the credentials or the operation (${safeMessage(cause)}). Check the user, password, authSource and authMechanism in \`url\`, and the user's roles.`,
      { hosts, serverCode: (cause as { code?: unknown })?.code },
      { cause },
    );
  }
}

/** A call to the server failed as a whole; `retryable` tells whether trying again may help. */
export class MongoOperationError extends MongoPluginError {
  constructor(operation: string, where: string, cause: unknown) {
    const retryable = isTransientMongoError(cause);
    super(
      'MONGODB_OPERATION_FAILED',
      `MongoDB ${operation} on ${where} failed: ${safeMessage(cause)}.${retryable ? ' This is transient (the server or network); the call is retried.' : ' Fix the cause above and run again.'}`,
      { operation, where, serverCode: (cause as { code?: unknown })?.code },
      { cause, retryable },
    );
  }
}

/** Writes were applied but not acknowledged by the requested write concern. Transient. */
export class MongoWriteConcernError extends MongoPluginError {
  constructor(where: string, message: string) {
    super(
      'MONGODB_WRITE_CONCERN_FAILED',
      `MongoDB did not confirm the write concern for ${where}: ${redactText(message)}. The batch is retried (writes by key are idempotent); if this persists check the replica set's health or lower \`writeConcern\`.`,
      { where },
      { retryable: true },
    );
  }
}

/** One record the server (or the pre-send size check) refused for what it is. Goes to the dead letters. */
export class MongoRecordRejectedError extends MongoPluginError {
  constructor(where: string, problem: string, serverCode?: number) {
    super(
      'MONGODB_RECORD_REJECTED',
      `MongoDB refused a record for ${where}: ${redactText(problem)}. It went to the dead letters with its original value; fix the value (or the collection's rules) and replay it.`,
      { where, serverCode },
    );
  }
}

/** The stage's settings do not fit the server or the collection (index conflicts, features). */
export class MongoSetupError extends MongoPluginError {
  constructor(where: string, problem: string, cause?: unknown) {
    super(
      'MONGODB_SETUP_FAILED',
      `MongoDB setup of ${where} failed: ${redactText(problem)}.`,
      {
        where,
      },
      { cause },
    );
  }
}

/** The server offers no change streams (FerretDB, a standalone mongod). */
export class MongoChangeStreamsUnsupportedError extends MongoPluginError {
  constructor(server: string, where: string, cause: unknown) {
    super(
      'MONGODB_CHANGE_STREAMS_UNSUPPORTED',
      `${server} offers no change streams (needed by \`changeStream: true\` on ${where}): ${safeMessage(cause)}. Set \`changeStream: false\` and \`follow: true\` to poll the collection in \`orderBy\` order instead, or use a MongoDB replica set.`,
      { server, where },
      { cause },
    );
  }
}

/** A key-manager request that cannot be served as asked (not "no key available": that is `undefined`). */
export class KeyRequestError extends MongoPluginError {
  constructor(target: string, problem: string) {
    super('KEY_REQUEST_INVALID', `Key request for target "${target}" is invalid: ${problem}.`, {
      target,
      problem,
    });
  }
}

/** An acquire kept losing the race for a key to other workers. Transient. */
export class KeyContentionError extends MongoPluginError {
  constructor(target: string, attempts: number) {
    super(
      'KEY_CONTENTION',
      `Key request for target "${target}" lost ${attempts} races in a row to other workers charging the same keys; try again (it is retried), or spread the workers' requests over more keys.`,
      { target, attempts },
      { retryable: true },
    );
  }
}

/** An operation after close(). */
export class MongoClientClosedError extends MongoPluginError {
  constructor(what: string) {
    super(
      'CLIENT_CLOSED',
      `This MongoDB ${what} is closed; create a new one instead of reusing it.`,
      {
        what,
      },
    );
  }
}

/** Maps a driver error from `operation` to this plugin's errors (auth, unavailable, other). */
export function mongoOperationError(
  operation: string,
  where: string,
  hosts: string,
  timeoutMs: number,
  cause: unknown,
): MongoPluginError {
  if (cause instanceof MongoPluginError) return cause;
  if (cause instanceof MongoServerSelectionError)
    return new MongoUnavailableError(hosts, timeoutMs, cause);
  if (cause instanceof MongoServerError && AUTH_CODES.has(cause.code as number))
    return new MongoAuthError(hosts, cause);
  return new MongoOperationError(operation, where, cause);
}
