import { redactText } from './console-logger.js';
import { CodefeedrError } from './errors.js';
import type { Logger } from './logger.js';
import type { MessageType } from './message-type.js';
import type { StageMetrics } from './metrics.js';
import type { StageOptions } from './pipeline-builder.js';
import type { StreamRecord } from './record.js';
import { sourceRecordError } from './source-record-error.js';
import type { DeadLetterQueue } from './dead-letter.js';
import { abortableDelay } from './abortable-delay.js';

/** A source, sink or buffer call kept failing after its retries: the run stops with this. */
export class StageFailedError extends CodefeedrError {
  constructor(stageId: string, operation: string, attempts: number, cause: unknown) {
    super(
      'STAGE_FAILED',
      `Stage "${stageId}" failed: ${operation} threw ${attempts} time${attempts === 1 ? '' : 's'} (last: ${redactText(String((cause as Error)?.message ?? cause))}). Positions were committed only up to data already flushed, so fix the cause and run again: nothing is lost.`,
      { stageId, operation, attempts },
      { cause },
    );
  }
}

/** `pipeline.run()` options that cannot work together or name nothing. */
export class RunOptionsError extends CodefeedrError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('RUN_OPTIONS_INVALID', message, details);
  }
}

export class UnknownWorkerStageError extends CodefeedrError {
  constructor(stage: string | undefined, known: readonly string[]) {
    super(
      'UNKNOWN_WORKER_STAGE',
      stage === undefined
        ? `Worker mode needs the stage to run: pass { mode: 'worker', stage: <id> } (stages: ${known.join(', ')}).`
        : `No stage "${stage}" in this pipeline. Stages: ${known.join(', ')}.`,
      { stage, known },
    );
  }
}

export interface RetryPolicy {
  retries: number;
  backoffMs: number;
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Runs an I/O call (poll, write, flush, send, commit) with exponential backoff; after
 * `retries` extra attempts it throws StageFailedError naming the stage. Not used per record.
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
      if (attempt > policy.retries || policy.signal.aborted) {
        throw new StageFailedError(stageId, operation, attempt, error);
      }
      const delay = Math.min(5000, policy.backoffMs * 2 ** (attempt - 1));
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

/** One promise chain: batches, ticks and checkpoints of a unit never interleave. */
export class AsyncMutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * Checks records entering a stage against its declared input type: every record (`all`),
 * one in N (`sample`, default N = 100) or none (`off`). Failures go to the dead-letter queue.
 */
export class InputValidator {
  private counter = 0;
  private readonly every: number;
  constructor(
    private readonly types: readonly MessageType[],
    options: StageOptions,
  ) {
    const mode = options.validation ?? 'sample';
    this.every =
      mode === 'off'
        ? 0
        : mode === 'all'
          ? 1
          : Math.max(1, Math.floor(options.validationSampleRate ?? 100));
  }

  /** The records that passed; `records` itself when nothing failed (no copy on the hot path). */
  filter(
    records: readonly StreamRecord[],
    inputIndex: number,
    dlq: DeadLetterQueue,
  ): readonly StreamRecord[] {
    const type = this.types[inputIndex];
    if (this.every === 0 || type === undefined || type.id === 'any@1') return records;
    // `counter` = records since the last check; visit only the sampled indexes, not every record.
    let failed: Set<number> | undefined;
    for (let i = this.every - 1 - this.counter; i < records.length; i += this.every) {
      const record = records[i]!;
      try {
        type.check(record.value);
      } catch (error) {
        (failed ??= new Set()).add(i);
        dlq.add(record, error, { attempts: 1, inputIndex });
      }
    }
    this.counter = (this.counter + records.length) % this.every;
    return failed === undefined ? records : records.filter((_, i) => !failed.has(i));
  }
}

/** Splits a source batch: records a source flagged as unparseable go to the dead-letter queue. */
export function dropBadSourceRecords<T>(
  records: StreamRecord<T>[],
  dlq: DeadLetterQueue,
): StreamRecord<T>[] {
  let kept: StreamRecord<T>[] | undefined;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const error = record.headers === undefined ? undefined : sourceRecordError(record);
    if (error !== undefined) {
      kept ??= records.slice(0, i);
      dlq.add(record, error, { attempts: 1, inputIndex: null });
    } else if (kept !== undefined) {
      kept.push(record);
    }
  }
  return kept ?? records;
}
