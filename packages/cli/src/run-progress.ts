import type { PipelineMetricsSnapshot } from '@codefeedr/core';

/** 1234567 → `1.23M`, for a progress line that stays short. */
function compact(n: number): string {
  if (n < 1_000) return String(Math.round(n));
  const [scaled, unit] = n < 1_000_000 ? [n / 1_000, 'k'] : [n / 1_000_000, 'M'];
  return `${scaled.toFixed(scaled < 10 ? 2 : scaled < 100 ? 1 : 0)}${unit}`;
}

/**
 * The live line `codefeedr run` redraws on a terminal: per stage, records so far and the rate
 * since the previous line (records/s), so a stalled stage shows as `0/s` rather than a count
 * that merely stopped moving.
 */
export class RunProgress {
  private last: { at: number; counts: Map<string, number> } | undefined;

  constructor(private readonly startedAt: number) {}

  line(metrics: PipelineMetricsSnapshot, now = Date.now()): string {
    const counts = new Map(
      metrics.stages.map((s) => [s.stage, s.kind === 'input' ? s.recordsOut : s.recordsIn]),
    );
    const seconds = Math.max(0, (now - this.startedAt) / 1000);
    const parts = [...counts].map(([stage, count]) => {
      const previous = this.last?.counts.get(stage);
      const elapsed = this.last ? (now - this.last.at) / 1000 : seconds;
      const rate =
        elapsed > 0 ? (count - (previous ?? (this.last ? count : 0))) / elapsed : undefined;
      return `${stage} ${compact(count)}${rate === undefined ? '' : ` (${compact(rate)}/s)`}`;
    });
    this.last = { at: now, counts };
    return `${seconds.toFixed(0)}s  ${parts.join('  ')}`;
  }
}
