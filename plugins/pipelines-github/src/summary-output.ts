import { defineOutput, z } from '@codefeedr/core';
import type { Sink, StreamRecord } from '@codefeedr/core';
import { ActivityType, type Activity } from './activity.js';
import { EventWindowCountType, type EventWindowCount } from './event-windows.js';
import { GitHubSummary, renderSummary } from './github-summary.js';
import {
  TrendingRepositoryType,
  type TrendingRepository,
} from './trending-repositories-ranking.js';

/** What the summary prints: activity, and the windowed stages' results. */
export type SummaryInput = Activity | EventWindowCount | TrendingRepository;

function isWritable(value: unknown): value is NodeJS.WritableStream {
  return typeof (value as NodeJS.WritableStream | undefined)?.write === 'function';
}

export const summaryOutputConfigSchema = z
  .object({
    /** Rows in each top-repositories table. */
    top: z.number().int().min(1).max(100).default(10),
    /** Shown in the title, e.g. `replay of events.ndjson.gz`. */
    source: z.string().default('GitHub events'),
    /** Where to print (default: stdout). */
    out: z.custom<NodeJS.WritableStream>(isWritable, 'out must be a writable stream').optional(),
    /** Colours and in-place redraws; default: whether `out` is a terminal. */
    tty: z.boolean().optional(),
    /** Redraw the running summary this often on a terminal. */
    refreshMs: z.number().int().positive().default(250),
    /** Off a terminal, print the whole summary this often (0: only at the end). For live runs. */
    plainEveryMs: z.number().int().nonnegative().default(0),
    /** Filled as records arrive, for callers that want the figures rather than the text. */
    summary: z.instanceof(GitHubSummary).optional(),
  })
  .strict();

export type SummaryOutputOptions = z.input<typeof summaryOutputConfigSchema>;
type SummaryOutputConfig = z.output<typeof summaryOutputConfigSchema>;

/** Counts activity records and prints the summary: redrawn in place on a terminal, plain otherwise. */
export class SummarySink implements Sink<SummaryInput> {
  readonly summary: GitHubSummary;
  private readonly out: NodeJS.WritableStream;
  private readonly tty: boolean;
  private drawnLines = 0;
  private lastDraw = 0;

  constructor(private readonly config: SummaryOutputConfig) {
    this.summary = config.summary ?? new GitHubSummary();
    this.out = config.out ?? process.stdout;
    this.tty = config.tty ?? (this.out as { isTTY?: boolean }).isTTY === true;
  }

  write(batch: readonly StreamRecord<SummaryInput>[]): void {
    for (const { value } of batch) {
      // The three input types share no field name that tells them apart but these.
      if ('kind' in value) this.summary.add(value);
      else if ('sizeMs' in value) this.summary.addWindow(value);
      else this.summary.addTrending(value);
    }
    const now = Date.now();
    const every = this.tty ? this.config.refreshMs : this.config.plainEveryMs;
    if (every > 0 && now - this.lastDraw >= every) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.draw(true);
  }

  private draw(final: boolean): void {
    const render = (top: number, maxTypes?: number, windows?: number) =>
      renderSummary(this.summary, {
        tty: this.tty,
        top,
        source: this.config.source,
        width: (this.out as { columns?: number }).columns,
        final,
        ...(maxTypes !== undefined ? { maxTypes } : {}),
        ...(windows !== undefined ? { windows } : {}),
      });
    let text = render(this.config.top);
    if (this.tty && !final) {
      // A redraw can only move back over lines still on screen: shrink the running view to fit.
      const rows = (this.out as { rows?: number }).rows || 24;
      for (const [top, maxTypes, windows] of [
        [Math.min(this.config.top, 5), 10, 3],
        [3, 5, 1],
        [1, 3, 0],
      ] as const) {
        if (text.split('\n').length <= rows - 1) break;
        text = render(top, maxTypes, windows);
      }
    }
    // On a terminal, move back over the previous drawing and clear it: a running summary.
    const erase = this.tty && this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[0J` : '';
    this.out.write(erase + text);
    this.drawnLines = this.tty ? text.split('\n').length - 1 : 0;
  }
}

/** `@codefeedr/pipelines-github:summary` — prints events per type and the top repositories. */
export const summaryOutput = defineOutput({
  name: 'summary',
  description:
    'Prints a running summary of GitHub activity: events per type, top repositories by pushes and by commits; with its second and third inputs, the busiest event-time windows and the trending repositories.',
  configSchema: summaryOutputConfigSchema,
  inputTypes: [ActivityType, EventWindowCountType, TrendingRepositoryType] as const,
  createSink: (config) => new SummarySink(config),
});
