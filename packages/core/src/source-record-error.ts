import type { DeadLetterQueue } from './dead-letter.js';
import { CodefeedrError } from './errors.js';
import { SOURCE_ERROR_HEADER } from './reserved-headers.js';
import type { StreamRecord } from './record.js';

/**
 * How a source hands over input it could not parse without losing it or stopping: it emits
 * the raw text as a record carrying this header (the error message). Runtimes and compiled
 * transform chains send such records to the dead-letter topic instead of processing them.
 * A header (rather than a thrown error) keeps the good records of the same batch flowing
 * and keeps the bad one in order with its position, so checkpoints stay exact.
 *
 * The header is SOURCE_ERROR_HEADER (reserved-headers.ts).
 */

/** A source could not parse one unit of input (a line, a message). */
export class BadSourceRecordError extends CodefeedrError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('SOURCE_RECORD_INVALID', message, details);
  }
}

/**
 * A record that stands for unparseable input: `raw` is kept as the value, exactly as read
 * (bytes for input that is not valid UTF-8, so the dead letter holds the original bytes).
 */
export function badSourceRecord<Raw extends string | Uint8Array>(
  raw: Raw,
  message: string,
  timestamp: number,
  headers: Record<string, string> = {},
): StreamRecord<Raw> {
  return { value: raw, timestamp, headers: { ...headers, [SOURCE_ERROR_HEADER]: message } };
}

/** The error a bad source record stands for, or undefined for a good record. */
export function sourceRecordError(record: StreamRecord): BadSourceRecordError | undefined {
  const message = record.headers?.[SOURCE_ERROR_HEADER];
  return message === undefined ? undefined : new BadSourceRecordError(message);
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
