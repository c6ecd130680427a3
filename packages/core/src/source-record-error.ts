import { CodefeedrError } from './errors.js';
import type { StreamRecord } from './record.js';

/**
 * How a source hands over input it could not parse without losing it or stopping: it emits
 * the raw text as a record carrying this header (the error message). Runtimes and compiled
 * transform chains send such records to the dead-letter topic instead of processing them.
 * A header (rather than a thrown error) keeps the good records of the same batch flowing
 * and keeps the bad one in order with its position, so checkpoints stay exact.
 */
export const SOURCE_ERROR_HEADER = 'codefeedr-source-error';

/** A source could not parse one unit of input (a line, a message). */
export class BadSourceRecordError extends CodefeedrError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('SOURCE_RECORD_INVALID', message, details);
  }
}

/** A record that stands for unparseable input: `raw` is kept as the value. */
export function badSourceRecord(
  raw: string,
  message: string,
  timestamp: number,
  headers: Record<string, string> = {},
): StreamRecord<string> {
  return { value: raw, timestamp, headers: { ...headers, [SOURCE_ERROR_HEADER]: message } };
}

/** The error a bad source record stands for, or undefined for a good record. */
export function sourceRecordError(record: StreamRecord): BadSourceRecordError | undefined {
  const message = record.headers?.[SOURCE_ERROR_HEADER];
  return message === undefined ? undefined : new BadSourceRecordError(message);
}
