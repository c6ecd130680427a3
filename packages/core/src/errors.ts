/**
 * Every code core's own errors carry, each with what it means (the table in README.md is
 * this list). Plugins add their own codes: `CodefeedrError.code` is any string, and a
 * plugin's codes should start with its technology (`KAFKA_`, `POSTGRES_`).
 */
export const CORE_ERROR_CODES = {
  BUFFER_CLOSED: 'A memory buffer (or one of its clients) was used after close().',
  CHECKPOINT_CORRUPT:
    'A checkpoint file cannot be read; restore it or delete it to restart from committed positions.',
  CONFIG_INVALID:
    "A component's config failed its schema (every problem listed, unknown keys included).",
  CYCLE: 'The stages form a cycle.',
  DANGLING_STAGE: 'A stage is not reachable from any input.',
  DATAFLOW_GRAPH_INVALID:
    "A transform's DataStream graph cannot be compiled (e.g. a stream used from another transform).",
  DECODE_FAILED: 'A serde could not decode a record (it goes to the dead letters with its bytes).',
  DUPLICATE_EDGE: 'The same edge is declared twice.',
  DUPLICATE_SERDE: 'Two serdes were registered under one name.',
  DUPLICATE_STAGE_ID: 'Two stages share an id.',
  EDGE_FROM_OUTPUT: 'An edge starts at an output stage, which emits nothing.',
  EDGE_INTO_INPUT: 'An edge points into an input stage, which has no inputs.',
  EMPTY_PIPELINE: 'The pipeline has no stages.',
  INPUT_COUNT_MISMATCH: 'A stage has more or fewer parents than declared inputs.',
  KEY_NOT_STRING:
    'A keyBy selector returned a non-string key (the stage fails: it would collide as a string).',
  METRICS_PORT_UNAVAILABLE: 'The metrics endpoint cannot listen on the port asked for.',
  NDJSON_FILE_UNREADABLE: 'An NDJSON input file cannot be opened or decompressed.',
  NDJSON_WRITE_FAILED: 'An NDJSON output file cannot be written.',
  PIPELINE_INVALID: "The pipeline's shape is invalid: the problems above, all at once.",
  NAMED_OUTPUT_INVALID:
    "A transform's named outputs cannot be used: a reserved or unusable name, or transform() returned other outputs than it declares.",
  OUTPUT_TOPIC_CLASH:
    "A named output's topic (`<stage>.<name>`) is another stage's id or a dead-letter topic.",
  RECORD_KEY_INVALID:
    'A record reached a buffer with a key that is not a string (dead-lettered; a null key counts as none).',
  RESERVED_STAGE_ID: "A stage id names another stage's dead-letter topic (`<stage>.dlq`).",
  RUN_OPTIONS_INVALID:
    'Run options that cannot work together (a worker on the in-memory buffer, an unknown mode, splits a pipeline cannot run in).',
  SCHEMA_MISMATCH: "A record does not match its message type's schema (dead-lettered).",
  SPLIT_FAILED:
    "A split run's worker thread failed with an error that has no code of its own (its message follows), or exited before it finished.",
  SPLIT_RECORD_UNCLONEABLE:
    "A record leaving a split run's parallel stage holds a value a structured clone refuses (a function, a symbol): it cannot reach the main thread.",
  SOURCE_RECORD_INVALID:
    'A source could not parse a unit of input (dead-lettered with its original bytes).',
  STAGE_FAILED:
    "A stage's I/O call failed for good (not retryable, or still failing after its retries).",
  STATE_BACKEND_FAILED:
    'The disk state backend cannot create, read or write its database file (free space, permissions of its directory, Node without node:sqlite).',
  STATE_INCOMPATIBLE: "A checkpoint's state does not fit the transform restoring it.",
  STATE_FENCED:
    "A worker's partition state was saved by another worker meanwhile (a rebalance raced a checkpoint); the worker stops rather than overwrite it.",
  TIMESTAMP_INVALID: 'A record has no valid event time for the watermark assigner.',
  TRANSACTION_FENCED:
    'A transactional producer was fenced by another worker that took over a partition it wrote last; its open transaction is aborted and the stage reloads its state.',
  TRANSACTION_REVOKED:
    "A rebalance began before an exactly-once batch's transaction committed; the transaction is aborted and the batch redone from the committed state.",
  TRANSACTIONS_UNSUPPORTED: 'Exactly-once was asked of a buffer without transactions.',
  TYPE_MISMATCH: "An edge's message types do not match, input by input.",
  UNKNOWN_OUTPUT: 'An edge reads a named output its stage does not declare.',
  UNKNOWN_PARTITION: 'A record names a partition its topic does not have.',
  UNKNOWN_SERDE: 'A stage names a serde that is not registered.',
  UNKNOWN_STAGE: 'An edge names a stage that is not in the pipeline.',
  UNKNOWN_WORKER_STAGE: 'A worker run names no stage, or one the pipeline lacks.',
  USER_FUNCTION_FAILED: 'User code threw on a record after its retries (dead-lettered).',
} as const;

/** The closed union of core's error codes: switch on it exhaustively. */
export type CoreErrorCode = keyof typeof CORE_ERROR_CODES;

/** Marks CodeFeedr errors across module copies (a CJS and an ESM core in one process). */
const BRAND = Symbol.for('codefeedr.error');

export interface CodefeedrErrorOptions extends ErrorOptions {
  /**
   * Whether trying the same call again may succeed (a connection reset, a broker leader
   * moving). Config, auth, schema and state errors are not: they fail the stage at once.
   * Default false: an error raised on purpose names a problem a retry cannot fix.
   */
  retryable?: boolean;
}

/**
 * Every error CodeFeedr throws on purpose is a CodefeedrError with a stable `code`
 * (safe to switch on in scripts) and a message that says what to do next.
 */
export class CodefeedrError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly retryable: boolean;

  constructor(
    code: CoreErrorCode | (string & {}),
    message: string,
    details: Record<string, unknown> = {},
    options?: CodefeedrErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
    this.retryable = options?.retryable ?? false;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** `instanceof CodefeedrError` that also holds for an error made by another copy of core. */
export function isCodefeedrError(error: unknown): error is CodefeedrError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Record<symbol, unknown>)[BRAND] === true
  );
}

/**
 * Whether a failed call is worth retrying. A CodefeedrError says so itself; a programming
 * error (TypeError, RangeError, ReferenceError, SyntaxError) never is; anything else a
 * client library throws (a socket error, a timeout) is presumed transient.
 */
export function isRetryable(error: unknown): boolean {
  if (isCodefeedrError(error)) return error.retryable;
  if (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError
  )
    return false;
  // `retryable`, or `retriable` as kafkajs spells it.
  const e = error as { retryable?: unknown; retriable?: unknown } | null;
  const flag = e?.retryable ?? e?.retriable;
  return typeof flag === 'boolean' ? flag : true;
}

/** A stage's config failed its schema. Lists every problem at once. */
export class ConfigError extends CodefeedrError {
  readonly problems: readonly string[];
  constructor(stageId: string, problems: readonly string[]) {
    super(
      'CONFIG_INVALID',
      `Stage "${stageId}" has invalid config:\n${problems.map((p) => `  - ${p}`).join('\n')}\nFix the stage's config (\`with:\` in a pipeline file) and run again.`,
      { stageId, problems },
    );
    this.problems = problems;
  }
}

/** A record could not be decoded by a serde. Carries the original bytes for the dead-letter topic. */
export class DecodeError extends CodefeedrError {
  constructor(serde: string, cause: unknown) {
    super(
      'DECODE_FAILED',
      `Serde "${serde}" could not decode a record: ${String((cause as Error)?.message ?? cause)}`,
      { serde },
      { cause },
    );
  }
}

/** A value did not match its message type's schema. */
export class SchemaMismatchError extends CodefeedrError {
  constructor(typeId: string, issues: readonly string[]) {
    super('SCHEMA_MISMATCH', `Value does not match message type ${typeId}: ${issues.join('; ')}`, {
      typeId,
      issues,
    });
  }
}
