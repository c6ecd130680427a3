import { CodefeedrError } from '@codefeedr/core';

/**
 * An event that reached a windowed pipeline after the watermark had closed every window it
 * belongs to. Thrown on the late-data side output so the event is dead-lettered with this
 * reason instead of silently left out of the counts (Flink's default).
 */
export class LateEventError extends CodefeedrError {
  constructor(
    stage: string,
    event: { repo: string; at: number },
    watermark: number,
    boundMs: number,
  ) {
    const at = new Date(event.at).toISOString();
    const mark = Number.isFinite(watermark) ? new Date(watermark).toISOString() : String(watermark);
    super(
      'GITHUB_EVENT_LATE',
      `${stage}: an event of ${event.repo} at ${at} came after the watermark (${mark}) had closed its windows, so it is not counted; raise outOfOrdernessMs (now ${boundMs} ms) if the input is more out of order than that.`,
      { stage, repo: event.repo, at, watermark: mark, outOfOrdernessMs: boundMs },
    );
  }
}
