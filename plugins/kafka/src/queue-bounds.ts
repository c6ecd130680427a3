import type { ConsumerOptions } from '@codefeedr/core';

/**
 * The backpressure rule of both clients' consumers: fetching pauses when the queue holds
 * `maxRecords` records or `maxBytes` bytes of values and keys, and resumes once both are down
 * to half. The bounds are the consumer's options, else the buffer's settings.
 */
export class QueueBounds {
  readonly maxRecords: number;
  readonly maxBytes: number;

  constructor(
    options: Pick<ConsumerOptions, 'maxBufferedRecords' | 'maxBufferedBytes'>,
    settings: { maxBufferedRecords: number; maxBufferedBytes: number },
  ) {
    this.maxRecords = options.maxBufferedRecords ?? settings.maxBufferedRecords;
    this.maxBytes = options.maxBufferedBytes ?? settings.maxBufferedBytes;
  }

  /** Full by count or by bytes: fetching pauses. */
  full(records: number, bytes: number): boolean {
    return records >= this.maxRecords || bytes >= this.maxBytes;
  }

  /** Drained to half by count and by bytes: fetching resumes. */
  halfEmpty(records: number, bytes: number): boolean {
    return records <= this.maxRecords / 2 && bytes <= this.maxBytes / 2;
  }
}
