import type { DeadLetterQueue } from './dead-letter.js';
import { Any, type MessageType } from './message-type.js';
import type { StageOptions } from './pipeline-builder.js';
import type { StreamRecord } from './record.js';

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
    if (this.every === 0 || type === undefined || type.id === Any.id) return records;
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
