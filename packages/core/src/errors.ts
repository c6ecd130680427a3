/**
 * Every error CodeFeedr throws on purpose is a CodefeedrError with a stable `code`
 * (safe to switch on in scripts) and a message that says what to do next.
 */
export class CodefeedrError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
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
