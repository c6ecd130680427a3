import { inspect } from 'node:util';
import { z } from 'zod';
import { defineOutput } from './component.js';
import { Any } from './message-type.js';
import type { StreamRecord } from './record.js';
import type { Sink } from './sink.js';

const configSchema = z
  .object({
    /**
     * `json`: the value as one JSON line; `record`: {key, value, timestamp, headers} as JSON;
     * `text`: String(value); `pretty`: key, ISO time and the value, indented (for people).
     */
    format: z.enum(['json', 'record', 'text', 'pretty']).default('json'),
    /** Printed before every line, e.g. the stage name. */
    prefix: z.string().default(''),
  })
  .strict();

export type PrinterConfig = z.output<typeof configSchema>;

function formatRecord(r: StreamRecord<unknown>, format: PrinterConfig['format']): string {
  switch (format) {
    case 'json':
      return JSON.stringify(r.value) ?? 'undefined';
    case 'record':
      return JSON.stringify({
        key: r.key,
        value: r.value,
        timestamp: r.timestamp,
        headers: r.headers,
      });
    case 'text':
      return String(r.value);
    case 'pretty': {
      const time = Number.isFinite(r.timestamp)
        ? new Date(r.timestamp).toISOString()
        : String(r.timestamp);
      return `${r.key ?? '-'} @ ${time}: ${inspect(r.value, { depth: 4, colors: false, breakLength: 100 })}`;
    }
  }
}

/** Prints records to a writable stream (stdout for the component), one write per batch. */
export class PrinterSink implements Sink<unknown> {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly config: PrinterConfig,
  ) {}

  async write(batch: readonly StreamRecord<unknown>[]): Promise<void> {
    if (batch.length === 0) return;
    const { prefix, format } = this.config;
    let text = '';
    for (let i = 0; i < batch.length; i++) {
      let line: string;
      try {
        line = formatRecord(batch[i]!, format);
      } catch (error) {
        // A value JSON cannot show (BigInt, cycle) is still printed, never dropped.
        line = `${inspect(batch[i]!.value)} (not JSON: ${(error as Error).message})`;
      }
      text += prefix + line + '\n';
    }
    // Backpressure: a full stdout pipe makes the pipeline wait instead of buffering without bound.
    if (!this.out.write(text))
      await new Promise<void>((resolve) => this.out.once('drain', resolve));
  }

  async flush(): Promise<void> {
    // Writing an empty chunk calls back once everything before it has been handed to the OS.
    await new Promise<void>((resolve, reject) =>
      this.out.write('', (error) => (error ? reject(error) : resolve())),
    );
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

/** Prints every record to stdout (Flink's print sink), in a chosen format. */
export const printerOutput = defineOutput({
  name: 'printer',
  description: 'Prints records to stdout as JSON, full records, text or a pretty form.',
  configSchema,
  inputTypes: [Any] as const,
  createSink: (config) => new PrinterSink(process.stdout, config),
});
