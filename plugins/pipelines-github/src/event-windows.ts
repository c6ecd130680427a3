import {
  defineMessageType,
  defineTransform,
  z,
  type DataStream,
  type OutputTag,
} from '@codefeedr/core';
import { GitHubEventType, type GitHubEvent } from '@codefeedr/plugin-github';
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

/** Counts of one window size over `events` (already carrying event time and watermarks). */
function countsPerWindow(
  events: DataStream<GitHubEvent>,
  sizeMs: number,
  stageId: string,
  outOfOrdernessMs: number,
): DataStream<EventWindowCount> {
  const late: OutputTag<GitHubEvent> = { id: `late-events-${sizeMs}` };
  const counts = events
    .windowAll({ type: 'tumbling', sizeMs })
    .sideOutputLateData(late)
    // Counted incrementally: a process() window function would hold every event of the window.
    .aggregate<{ n: number; at: number }, EventWindowCount>({
      createAccumulator: () => ({ n: 0, at: 0 }),
      add: (e, acc) => ({ n: acc.n + 1, at: acc.n === 0 ? Date.parse(e.created_at) : acc.at }),
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
        { repo: e.repo.name, at: Date.parse(e.created_at) },
        ctx.currentWatermark,
        outOfOrdernessMs,
      );
    },
  });
  return counts.union(lateEvents);
}

/**
 * Events per tumbling event-time window of each configured size (the main job's "busiest
 * hours / 10-minute windows"). All of GitHub is one window per size (windowAll): run this stage
 * as one worker.
 */
export const eventWindowsTransform = defineTransform({
  name: 'event-windows',
  description: 'Counts GitHub events per tumbling event-time window (default 10 min and 1 h).',
  configSchema: eventWindowsConfigSchema,
  inputTypes: [GitHubEventType] as const,
  outputType: EventWindowCountType,
  transform: ([events], config, ctx) => {
    const timed = events.assignTimestampsAndWatermarks({
      timestampAssigner: (e) => Date.parse(e.created_at),
      maxOutOfOrdernessMs: config.outOfOrdernessMs,
    });
    const [first, ...rest] = config.sizesMs.map((sizeMs) =>
      countsPerWindow(timed, sizeMs, ctx.stageId, config.outOfOrdernessMs),
    );
    return rest.length === 0 ? first! : first!.union(...rest);
  },
});
