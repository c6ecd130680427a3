import { z, type DataStream, type OutputTag, type WindowAssigner } from '@codefeedr/core';
import { LateEventError } from './errors.js';

/** An event-time window size setting (default 1 h). */
export function windowSizeSchema(description: string) {
  return z.number().int().positive().default(3_600_000).describe(description);
}

/** The watermark's bound, shared by the windowed transforms and pipelines. */
export const outOfOrdernessSchema = z
  .number()
  .int()
  .nonnegative()
  .default(60_000)
  .describe(
    'Watermark bound: how far behind the newest event an event may arrive and still be counted (default 1 min). The replay emits in event-time order; live events come nearly ordered.',
  );

/** What the windowed pipelines count: one event's contribution to its repository's window. */
export interface RepositoryContribution {
  repo: string;
  /** Event time (created_at), ms. */
  at: number;
}

export interface RepositoryWindowsOptions<T, R> {
  window: WindowAssigner;
  /** The watermark's bound (bounded out-of-orderness). */
  outOfOrdernessMs: number;
  /** Names the stage in the late events' dead-letter reason. */
  stageId: string;
  /** Adds `value`'s counts into `total` (in place). */
  add(total: T, value: T): void;
  /** Turns each window's totals (record time = window end − 1) into results. */
  results(totals: DataStream<T>): DataStream<R>;
}

/**
 * Event time → keyBy repository → `window` → incremental totals → `results`, with late events
 * (behind the watermark's bound, in no open window) dead-lettered as LateEventError instead of
 * silently left out (Flink drops them by default). Results are keyed by their `id`, which the
 * outputs upsert by (MongoDB's `_id`).
 */
export function perRepositoryWindows<T extends RepositoryContribution, R extends { id: string }>(
  contributions: DataStream<T>,
  options: RepositoryWindowsOptions<T, R>,
): DataStream<R> {
  const late: OutputTag<T> = { id: 'late-events' };
  const totals = contributions
    .assignTimestampsAndWatermarks({
      timestampAssigner: (v) => v.at,
      maxOutOfOrdernessMs: options.outOfOrdernessMs,
    })
    .keyBy((v) => v.repo)
    .window(options.window)
    .sideOutputLateData(late)
    .aggregate<T | null, T>({
      // null until the first value: the totals start as a copy of it (state stays JSON).
      createAccumulator: () => null,
      add: (value, total) => {
        if (total === null) return { ...value };
        options.add(total, value);
        return total;
      },
      getResult: (total) => ({ ...total! }),
    });
  const lateEvents = totals.getSideOutput(late).process<R>({
    processElement(value, ctx) {
      throw new LateEventError(
        options.stageId,
        value,
        ctx.currentWatermark,
        options.outOfOrdernessMs,
      );
    },
  });
  return options
    .results(totals)
    .union(lateEvents)
    .keyBy((r) => r.id)
    .process<R>({ processElement: (r, _ctx, out) => out.collect(r) });
}
