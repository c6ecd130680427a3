export interface WaitForOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Time between checks (default 50 ms). */
  intervalMs?: number;
  /** What was awaited, for the error message. */
  description?: string;
}

/** A condition did not hold before its deadline. */
export class WaitTimeoutError extends Error {
  readonly code = 'TESTKIT_WAIT_TIMEOUT';
}

/**
 * Polls `condition` until it returns a value other than `false`/`undefined`, and returns
 * that value. Readiness is always a condition with a deadline, never a fixed sleep.
 */
export async function waitFor<T>(
  condition: () => T | false | undefined | Promise<T | false | undefined>,
  options: WaitForOptions = {},
): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 50, description = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false && value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail =
        lastError === undefined
          ? ''
          : ` (last error: ${String((lastError as Error).message ?? lastError)})`;
      throw new WaitTimeoutError(
        `Timed out after ${timeoutMs} ms waiting for ${description}${detail}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
