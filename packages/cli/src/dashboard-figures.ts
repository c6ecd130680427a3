import type { PipelineMetricsSnapshot, StageMetricsSnapshot } from '@codefeedr/core';

/** One scrape of one metrics endpoint: its snapshot, or why there is none. */
export type WorkerSample =
  | { url: string; ok: true; snapshot: PipelineMetricsSnapshot }
  | { url: string; ok: false; error: string };

export interface WorkerStatus {
  url: string;
  state: 'up' | 'down';
  /** The stages the worker reported (its last answer's, when down). */
  stages: string[];
  /** Why it is down. */
  error: string | null;
  /** When it last answered (epoch ms), null if never. */
  lastSeen: number | null;
  /** Records its stages emitted or wrote (at its last answer), and per second now (0 when down). */
  recordsOut: number;
  outPerSec: number;
}

/** A stage's figures summed (or, for gauges, combined) over the workers that run it. */
export interface StageFigures {
  stage: string;
  kind: string;
  recordsIn: number;
  recordsOut: number;
  /** Records per second over the last scrape interval. */
  inPerSec: number;
  outPerSec: number;
  /** Summed over workers; null when no worker's buffer reports it. */
  consumerLag: number | null;
  /** The lowest over workers, as an operator downstream of all of them would see it. */
  watermark: number | null;
  /** The largest over workers (the furthest-behind sink). */
  eventTimeLagMs: number | null;
  backpressureMs: number;
  /** Share of the last interval spent waiting on full buffers or slow sinks (0..1, per worker mean). */
  backpressureShare: number;
  deadLettered: number;
  errors: number;
  /** Mean batch latency over the last interval; over the whole run while no batch ran in it. */
  batchLatencyMs: number | null;
  /** Workers that reported this stage in the last scrape. */
  workers: number;
}

export interface DashboardFrame {
  at: number;
  pipeline: string | null;
  mode: string | null;
  stages: StageFigures[];
  workers: WorkerStatus[];
}

/** The throughput plot's data: records out per second of each stage, at one moment. */
export interface ThroughputPoint {
  at: number;
  out: Record<string, number>;
}

interface Previous {
  at: number;
  recordsIn: number;
  recordsOut: number;
  backpressureMs: number;
  batches: number;
  latencySumMs: number;
}

/** `cur - prev` of a counter; a smaller value means the worker restarted, its counter at 0. */
const delta = (cur: number, prev: number | undefined) =>
  prev === undefined ? 0 : cur >= prev ? cur - prev : cur;

const minOf = (values: (number | null)[]) => pick(values, Math.min);
const maxOf = (values: (number | null)[]) => pick(values, Math.max);
function pick(values: (number | null)[], f: (...n: number[]) => number): number | null {
  const known = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return known.length === 0 ? null : f(...known);
}

/**
 * Turns successive scrapes of one or many metrics endpoints into the dashboard's figures:
 * rates from the difference between a worker's last two answers, stages combined over the
 * workers that run them, and a bounded history of throughput for the plot.
 */
export class DashboardFigures {
  private readonly previous = new Map<string, Previous>();
  private readonly workers = new Map<string, WorkerStatus>();
  private readonly points: ThroughputPoint[] = [];

  constructor(private readonly historyMs = 10 * 60_000) {}

  history(): ThroughputPoint[] {
    return [...this.points];
  }

  update(samples: readonly WorkerSample[], now = Date.now()): DashboardFrame {
    const perStage = new Map<
      string,
      { snapshots: StageMetricsSnapshot[]; inRate: number; outRate: number; share: number[] }
    >();
    const latency = new Map<string, { count: number; sum: number }>();
    let pipeline: string | null = null;
    let mode: string | null = null;
    const answered = new Set<string>();
    for (const sample of samples) {
      answered.add(sample.url);
      const known = this.workers.get(sample.url);
      if (!sample.ok) {
        this.workers.set(sample.url, {
          url: sample.url,
          state: 'down',
          stages: known?.stages ?? [],
          error: sample.error,
          lastSeen: known?.lastSeen ?? null,
          recordsOut: known?.recordsOut ?? 0,
          outPerSec: 0,
        });
        continue;
      }
      const { snapshot } = sample;
      pipeline ??= snapshot.pipeline;
      mode ??= snapshot.mode;
      const worker: WorkerStatus = {
        url: sample.url,
        state: 'up',
        stages: snapshot.stages.map((s) => s.stage),
        error: null,
        lastSeen: now,
        recordsOut: 0,
        outPerSec: 0,
      };
      this.workers.set(sample.url, worker);
      for (const s of snapshot.stages) {
        const key = `${sample.url}\u0000${s.stage}`;
        const prev = this.previous.get(key);
        const seconds = prev === undefined ? 0 : (now - prev.at) / 1000;
        const rate = (cur: number, before: number | undefined) =>
          seconds > 0 ? delta(cur, before) / seconds : 0;
        const entry = perStage.get(s.stage) ?? { snapshots: [], inRate: 0, outRate: 0, share: [] };
        entry.snapshots.push(s);
        entry.inRate += rate(s.recordsIn, prev?.recordsIn);
        entry.outRate += rate(s.recordsOut, prev?.recordsOut);
        worker.recordsOut += s.recordsOut;
        worker.outPerSec += rate(s.recordsOut, prev?.recordsOut);
        if (seconds > 0)
          entry.share.push(
            Math.min(1, delta(s.backpressureMs, prev?.backpressureMs) / (seconds * 1000)),
          );
        perStage.set(s.stage, entry);
        const lat = latency.get(s.stage) ?? { count: 0, sum: 0 };
        lat.count += delta(s.batchLatency.count, prev?.batches);
        lat.sum += delta(s.batchLatency.sumMs, prev?.latencySumMs);
        latency.set(s.stage, lat);
        this.previous.set(key, {
          at: now,
          recordsIn: s.recordsIn,
          recordsOut: s.recordsOut,
          backpressureMs: s.backpressureMs,
          batches: s.batchLatency.count,
          latencySumMs: s.batchLatency.sumMs,
        });
      }
    }
    // Endpoints no longer scraped drop out of the worker list.
    for (const url of this.workers.keys()) if (!answered.has(url)) this.workers.delete(url);

    const stages: StageFigures[] = [...perStage].map(([stage, e]) => {
      const sum = (f: (s: StageMetricsSnapshot) => number) =>
        e.snapshots.reduce((total, s) => total + f(s), 0);
      const lat = latency.get(stage)!;
      const totalCount = sum((s) => s.batchLatency.count);
      const lags = e.snapshots.map((s) => s.consumerLag);
      return {
        stage,
        kind: e.snapshots[0]!.kind,
        recordsIn: sum((s) => s.recordsIn),
        recordsOut: sum((s) => s.recordsOut),
        inPerSec: e.inRate,
        outPerSec: e.outRate,
        consumerLag: lags.every((l) => l === null)
          ? null
          : lags.reduce<number>((t, l) => t + (l ?? 0), 0),
        watermark: minOf(e.snapshots.map((s) => s.watermark)),
        eventTimeLagMs: maxOf(e.snapshots.map((s) => s.eventTimeLagMs)),
        backpressureMs: sum((s) => s.backpressureMs),
        backpressureShare:
          e.share.length === 0 ? 0 : e.share.reduce((a, b) => a + b, 0) / e.share.length,
        deadLettered: sum((s) => s.deadLettered),
        errors: sum((s) => s.errors),
        batchLatencyMs:
          lat.count > 0
            ? lat.sum / lat.count
            : totalCount > 0
              ? sum((s) => s.batchLatency.sumMs) / totalCount
              : null,
        workers: e.snapshots.length,
      };
    });
    this.points.push({
      at: now,
      out: Object.fromEntries(stages.map((s) => [s.stage, s.outPerSec])),
    });
    while (this.points.length > 0 && this.points[0]!.at < now - this.historyMs) this.points.shift();
    return { at: now, pipeline, mode, stages, workers: [...this.workers.values()] };
  }
}
