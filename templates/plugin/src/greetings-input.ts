import { defineInput, z, type JsonValue, type Source, type StreamRecord } from '@codefeedr/core';
import { Greeting, type GreetingValue } from './greeting.js';

const configSchema = z
  .object({
    to: z.string().min(1).describe('Who to greet.'),
    count: z
      .number()
      .int()
      .positive()
      .default(3)
      .describe('How many greetings before the stream ends.'),
    greeting: z.string().default('Hello').describe('The word to greet with.'),
  })
  .strict();

type GreetingsConfig = z.output<typeof configSchema>;

/** A bounded source: `count` greetings, then the end of the stream. */
export class GreetingsSource implements Source<GreetingValue> {
  /** Greetings emitted so far; the position checkpoints store. */
  private emitted = 0;

  constructor(private readonly config: GreetingsConfig) {}

  async poll(maxRecords: number): Promise<StreamRecord<GreetingValue>[] | null> {
    const n = Math.min(maxRecords, this.config.count - this.emitted);
    if (n <= 0) return null;
    const now = Date.now();
    // One array per batch, no promise per record: sources are batch-at-a-time.
    const batch = new Array<StreamRecord<GreetingValue>>(n);
    for (let i = 0; i < n; i++) {
      const index = this.emitted + i + 1;
      batch[i] = {
        key: String(index),
        value: { n: index, to: this.config.to, text: `${this.config.greeting}, ${this.config.to}` },
        timestamp: now,
      };
    }
    this.emitted += n;
    return batch;
  }

  position(): JsonValue {
    return { emitted: this.emitted };
  }

  restore(position: JsonValue): void {
    const emitted = (position as { emitted?: unknown } | null)?.emitted;
    this.emitted = typeof emitted === 'number' ? emitted : 0;
  }

  async close(): Promise<void> {}
}

export const greetingsInput = defineInput({
  name: 'greetings',
  description: 'Emits `count` greetings to `to`, then ends.',
  configSchema,
  outputType: Greeting,
  createSource: (config) => new GreetingsSource(config),
});
