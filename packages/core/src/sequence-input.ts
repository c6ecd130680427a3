import { z } from 'zod';
import { defineInput } from './component.js';
import { defineMessageType } from './message-type.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Source } from './source.js';
import { abortableDelay } from './abortable-delay.js';

/** The numbers sequenceInput emits. */
export const SequenceNumber = defineMessageType('codefeedr.SequenceNumber', 1, z.number());

const configSchema = z
  .object({
    from: z.number().default(0),
    /** Inclusive end; leave out for an unbounded sequence. */
    to: z.number().optional(),
    step: z
      .number()
      .refine((n) => n !== 0 && Number.isFinite(n), 'step must be a finite number other than 0')
      .default(1),
    /** At most this many records per second; leave out for as fast as the pipeline takes them. */
    ratePerSecond: z.number().positive().optional(),
    /** Event time of each record: the wall clock when polled, or the number itself (ms). */
    timestamps: z.enum(['wallclock', 'value']).default('wallclock'),
  })
  .strict();

export type SequenceConfig = z.output<typeof configSchema>;

/** How long a rate-limited poll waits at most before returning `[]`. */
const MAX_WAIT_MS = 100;

export class SequenceSource implements Source<number> {
  /** Index of the next number: value = from + index * step (no float drift). */
  private index = 0;
  private rateStartMs = 0;
  private rateStartIndex = 0;

  constructor(private readonly config: SequenceConfig) {}

  private remaining(): number {
    const { from, to, step } = this.config;
    if (to === undefined) return Infinity;
    const count = Math.floor((to - from) / step) + 1;
    return Math.max(0, count - this.index);
  }

  async poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<number>[] | null> {
    let n = Math.min(maxRecords, this.remaining());
    if (n === 0) return null;
    const rate = this.config.ratePerSecond;
    if (rate !== undefined) {
      const now = Date.now();
      if (this.rateStartMs === 0) {
        this.rateStartMs = now;
        this.rateStartIndex = this.index;
      }
      const allowed =
        Math.floor(((now - this.rateStartMs) * rate) / 1000) +
        1 -
        (this.index - this.rateStartIndex);
      if (allowed <= 0) {
        const dueMs = this.rateStartMs + ((this.index - this.rateStartIndex) * 1000) / rate;
        await abortableDelay(Math.min(MAX_WAIT_MS, Math.max(1, dueMs - now)), signal);
        return [];
      }
      n = Math.min(n, allowed);
    }
    const { from, step } = this.config;
    const useValue = this.config.timestamps === 'value';
    const now = Date.now();
    const batch = new Array<StreamRecord<number>>(n);
    for (let i = 0; i < n; i++) {
      const value = from + (this.index + i) * step;
      batch[i] = { key: undefined, value, timestamp: useValue ? value : now, headers: undefined };
    }
    this.index += n;
    return batch;
  }

  position(): JsonValue {
    return { index: this.index };
  }

  restore(position: JsonValue): void {
    const index = (position as { index?: unknown } | null)?.index;
    this.index = typeof index === 'number' && index >= 0 ? index : 0;
    this.rateStartMs = 0;
  }

  async close(): Promise<void> {}
}

/**
 * Numbers from `from` to `to` (inclusive, or forever) by `step`, optionally rate-limited.
 * Position: the index of the next number, so a restarted pipeline carries on exactly.
 */
export const sequenceInput = defineInput({
  name: 'sequence',
  description:
    'Numbers from `from` to `to` (or unbounded) by `step`, optionally at `ratePerSecond`.',
  configSchema,
  outputType: SequenceNumber,
  createSource: (config) => new SequenceSource(config),
});
