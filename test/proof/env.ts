// Proof tests read their servers from the CODEFEEDR_* variables that global setup
// exports, exactly as plugin tests will, so each one also proves the variables arrive.
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(
      `${name} is not set: test/services/global-setup.ts should export it (is vitest.config.ts's globalSetup in effect?)`,
    );
  }
  return value;
}

/** A suffix that makes topic/stream/table/package names unique per run. */
export function runId(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
