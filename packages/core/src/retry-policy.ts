import { abortableDelay } from './abortable-delay.js';
import { redactText } from './console-logger.js';
import { CodefeedrError, isRetryable } from './errors.js';
import type { Logger } from './logger.js';
import type { StageMetrics } from './metrics.js';

/** A source, sink or buffer call failed for good (not retryable, or still failing after its retries). */
export class StageFailedError extends CodefeedrError {
  constructor(stageId: string, operation: string, attempts: number, cause: unknown) {
    const why = redactText(String((cause as Error)?.message ?? cause));
    super(
      'STAGE_FAILED',
      attempts === 1
        ? `Stage "${stageId}" failed: ${operation} threw an error that a retry cannot fix (${why}). Positions were committed only up to data already flushed, so fix the cause and run again: nothing is lost.`
        : `Stage "${stageId}" failed: ${operation} threw ${attempts} times (last: ${why}). Positions were committed only up to data already flushed, so fix the cause and run again: nothing is lost.`,
      { stageId, operation, attempts },
      { cause },
    );
  }
}

export interface RetryPolicy {
  retries: number;
  backoffMs: number;
  signal: AbortSignal;
  logger: Logger;
}

/** The wait before retry `attempt` (1-based): doubling from `backoffMs`, at most 5 s. */
export function backoffMs(policy: Pick<RetryPolicy, 'backoffMs'>, attempt: number): number {
  return Math.min(5000, policy.backoffMs * 2 ** (attempt - 1));
}

/**
 * A random wait of up to `backoffMs(policy, attempt)` ("full jitter"): for parties that
 * collide with each other, where equal waits would make them collide again.
 */
export function jitteredBackoffMs(
  policy: Pick<RetryPolicy, 'backoffMs'>,
  attempt: number,
  random: () => number = Math.random,
): number {
  return Math.round(random() * backoffMs(policy, attempt));
}

/**
 * The one owner of retries for a stage's I/O calls (poll, write, flush, send, commit):
 * exponential backoff for errors that `isRetryable` deems transient; a config, auth, schema or
 * state error fails at once. Either way a final failure is a StageFailedError naming the
 * stage. Never used per record.
 */
export async function withRetries<T>(
  stageId: string,
  operation: string,
  policy: RetryPolicy,
  metrics: StageMetrics,
  call: () => T | Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      metrics.errors++;
      if (attempt > policy.retries || policy.signal.aborted || !isRetryable(error)) {
        throw new StageFailedError(stageId, operation, attempt, error);
      }
      const delay = backoffMs(policy, attempt);
      policy.logger.warn(`${operation} failed; retrying`, {
        stage: stageId,
        attempt,
        delayMs: delay,
        error,
      });
      await abortableDelay(delay, policy.signal);
    }
  }
}
