import {
  defineMessageType,
  defineTransform,
  z,
  type DataStream,
  type OutputTag,
} from '@codefeedr/core';
import { ActivityType, type Activity } from './activity.js';
import { LateEventError } from './errors.js';
import { outOfOrdernessSchema } from './repository-windows.js';

/** Events in one tumbling event-time window of all of GitHub (no key). */
export const EventWindowCountType = defineMessageType(
  'github.EventWindowCount',
  1,
  z.object({
    /** `<sizeMs>@<windowStart>`: unique per window. */
    id: z.string(),
    sizeMs: z.number().int().positive(),
    /** `[windowStart, windowEnd)`, ISO 8601 UTC. */
    windowStart: z.iso.datetime(),
    windowEnd: z.iso.datetime(),
    events: z.number().int().positive(),
  }),
);

export type EventWindowCount = z.output<typeof EventWindowCountType.schema>;

export const eventWindowsConfigSchema = z
  .object({
    /** One tumbling window size per table: 10 minutes and an hour by default. */
    sizesMs: z.array(z.number().int().positive()).min(1).default([600_000, 3_600_000]),
    outOfOrdernessMs: outOfOrdernessSchema,
  })
  .strict();

/** An event's activity record (not a push's): what the windows count. */
type EventActivity = Extract<Activity, { kind: 'event' }>;

/** Counts of one window size over `events` (already carrying event time and watermarks). */
function countsPerWindow(
  events: DataStream<EventActivity>,
  sizeMs: number,
  stageId: string,
  outOfOrdernessMs: number,
): DataStream<EventWindowCount> {
  const late: OutputTag<EventActivity> = { id: `late-events-${sizeMs}` };
  const counts = events
    .windowAll({ type: 'tumbling', sizeMs })
    .sideOutputLateData(late)
    // Counted incrementally: a process() window function would hold every event of the window.
    .aggregate<{ n: number; at: number }, EventWindowCount>({
      createAccumulator: () => ({ n: 0, at: 0 }),
      add: (e, acc) => ({ n: acc.n + 1, at: acc.n === 0 ? Date.parse(e.createdAt) : acc.at }),
      getResult: (acc) => {
        const start = Math.floor(acc.at / sizeMs) * sizeMs;
        const windowStart = new Date(start).toISOString();
        return {
          id: `${sizeMs}@${windowStart}`,
          sizeMs,
          windowStart,
          windowEnd: new Date(start + sizeMs).toISOString(),
          events: acc.n,
        };
      },
    });
  // A late event is dead-lettered with the reason, never silently left out of a count.
  const lateEvents = counts.getSideOutput(late).process<EventWindowCount>({
    processElement(e, ctx) {
      throw new LateEventError(
        stageId,
        { repo: e.repo, at: Date.parse(e.createdAt) },
        ctx.currentWatermark,
        outOfOrdernessMs,
      );
    },
  });
  return counts.union(lateEvents);
}

/**
 * Events per tumbling event-time window of each configured size (the main job's "busiest
 * hours / 10-minute windows"), counted from the activity records of events (an event's type,
 * repository and time: small enough to cross from a split run's threads). All of GitHub is one
 * window per size (windowAll): run this stage as one worker, or in a split run's main thread.
 */
export const eventWindowsTransform = defineTransform({
  name: 'event-windows',
  description:
    'Counts GitHub events (their activity records) per tumbling event-time window (default 10 min and 1 h).',
  configSchema: eventWindowsConfigSchema,
  inputTypes: [ActivityType] as const,
  outputType: EventWindowCountType,
  transform: ([activity], config, ctx) => {
    const timed = activity
      .filter((a): a is EventActivity => a.kind === 'event')
      .assignTimestampsAndWatermarks({
        timestampAssigner: (e) => Date.parse(e.createdAt),
        maxOutOfOrdernessMs: config.outOfOrdernessMs,
      });
    const [first, ...rest] = config.sizesMs.map((sizeMs) =>
      countsPerWindow(timed, sizeMs, ctx.stageId, config.outOfOrdernessMs),
    );
    return rest.length === 0 ? first! : first!.union(...rest);
  },
});
