import type { StageKind } from './stage.js';

/** Upper bounds (ms) of the batch latency histogram buckets. */
export const BATCH_LATENCY_BUCKETS_MS = [
  0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000,
];

export interface HistogramSnapshot {
  count: number;
  sumMs: number;
  /** Cumulative counts per upper bound, Prometheus style (`le` = +Inf is `count`). */
  buckets: { leMs: number; count: number }[];
}

export interface StageMetricsSnapshot {
  stage: string;
  kind: StageKind;
  recordsIn: number;
  recordsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Source/sink/buffer errors that were retried or failed the stage. */
  errors: number;
  deadLettered: number;
  batches: number;
  batchLatency: HistogramSnapshot;
  /** Time spent waiting on full buffers and slow sinks. */
  backpressureMs: number;
  /** Event-time watermark, null before the first one. */
  watermark: number | null;
  /** Records behind the end of the consumed partitions, where the buffer reports it. */
  consumerLag: number | null;
  /**
   * End-to-end latency of an output stage: wall clock minus the event time of the last record
   * it wrote (for a live feed, how far behind reality the sink is). Null elsewhere.
   */
  eventTimeLagMs: number | null;
}

export interface PipelineMetricsSnapshot {
  pipeline: string;
  mode: string;
  startedAt: number;
  stages: StageMetricsSnapshot[];
}

/** Mutable counters of one stage; the runtime updates them once per batch, not per record. */
export class StageMetrics {
  recordsIn = 0;
  recordsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  errors = 0;
  deadLettered = 0;
  batches = 0;
  backpressureMs = 0;
  watermark: number | null = null;
  consumerLag: number | null = null;
  eventTimeLagMs: number | null = null;
  private latencyCount = 0;
  private latencySum = 0;
  private readonly bucketCounts = BATCH_LATENCY_BUCKETS_MS.map(() => 0);

  constructor(
    readonly stage: string,
    readonly kind: StageKind,
  ) {}

  /** After an output stage wrote `records` (O(1): the last record stands for the batch). */
  observeWritten(records: readonly { timestamp: number }[]): void {
    const last = records[records.length - 1];
    if (last !== undefined && Number.isFinite(last.timestamp))
      this.eventTimeLagMs = Date.now() - last.timestamp;
  }

  observeBatch(ms: number): void {
    this.batches++;
    this.latencyCount++;
    this.latencySum += ms;
    for (let i = 0; i < BATCH_LATENCY_BUCKETS_MS.length; i++) {
      if (ms <= BATCH_LATENCY_BUCKETS_MS[i]!) this.bucketCounts[i]!++;
    }
  }

  snapshot(): StageMetricsSnapshot {
    return {
      stage: this.stage,
      kind: this.kind,
      recordsIn: this.recordsIn,
      recordsOut: this.recordsOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      errors: this.errors,
      deadLettered: this.deadLettered,
      batches: this.batches,
      batchLatency: {
        count: this.latencyCount,
        sumMs: this.latencySum,
        buckets: BATCH_LATENCY_BUCKETS_MS.map((leMs, i) => ({
          leMs,
          count: this.bucketCounts[i]!,
        })),
      },
      backpressureMs: this.backpressureMs,
      watermark: this.watermark,
      consumerLag: this.consumerLag,
      eventTimeLagMs: this.eventTimeLagMs,
    };
  }
}

export class PipelineMetrics {
  readonly startedAt = Date.now();
  private readonly stages = new Map<string, StageMetrics>();

  constructor(
    readonly pipeline: string,
    readonly mode: string,
  ) {}

  stage(id: string, kind: StageKind): StageMetrics {
    let metrics = this.stages.get(id);
    if (metrics === undefined) {
      metrics = new StageMetrics(id, kind);
      this.stages.set(id, metrics);
    }
    return metrics;
  }

  snapshot(): PipelineMetricsSnapshot {
    return {
      pipeline: this.pipeline,
      mode: this.mode,
      startedAt: this.startedAt,
      stages: [...this.stages.values()].map((s) => s.snapshot()),
    };
  }
}

const escapeLabel = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

const COUNTERS: [keyof StageMetricsSnapshot, string, string][] = [
  ['recordsIn', 'codefeedr_stage_records_in_total', 'Records that entered the stage.'],
  ['recordsOut', 'codefeedr_stage_records_out_total', 'Records the stage emitted or wrote.'],
  ['bytesIn', 'codefeedr_stage_bytes_in_total', 'Encoded bytes the stage read from its buffer.'],
  ['bytesOut', 'codefeedr_stage_bytes_out_total', 'Encoded bytes the stage sent to its buffer.'],
  ['errors', 'codefeedr_stage_errors_total', 'Source, sink and buffer errors.'],
  ['deadLettered', 'codefeedr_stage_dead_lettered_total', 'Records sent to the dead-letter topic.'],
];

/**
 * Prometheus text exposition format 0.0.4. Hand-written (about 40 lines) rather than
 * prom-client, so core keeps no runtime dependency beyond zod and msgpackr.
 */
export function toPrometheusText(snapshot: PipelineMetricsSnapshot): string {
  const lines: string[] = [];
  const labels = (s: StageMetricsSnapshot, extra = '') =>
    `{pipeline="${escapeLabel(snapshot.pipeline)}",stage="${escapeLabel(s.stage)}",kind="${s.kind}"${extra}}`;
  for (const [field, name, help] of COUNTERS) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const s of snapshot.stages) lines.push(`${name}${labels(s)} ${s[field] as number}`);
  }
  lines.push(
    '# HELP codefeedr_stage_backpressure_seconds_total Time spent waiting on full buffers and slow sinks.',
    '# TYPE codefeedr_stage_backpressure_seconds_total counter',
  );
  for (const s of snapshot.stages) {
    lines.push(`codefeedr_stage_backpressure_seconds_total${labels(s)} ${s.backpressureMs / 1000}`);
  }
  for (const [field, name, help] of [
    ['watermark', 'codefeedr_stage_watermark_milliseconds', 'Event-time watermark (epoch ms).'],
    [
      'consumerLag',
      'codefeedr_stage_consumer_lag_records',
      'Records behind the end of the consumed partitions.',
    ],
    [
      'eventTimeLagMs',
      'codefeedr_stage_event_time_lag_milliseconds',
      'Wall clock minus event time of the last record an output stage wrote (end-to-end latency).',
    ],
  ] as const) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const s of snapshot.stages) {
      const value = s[field];
      if (value !== null && Number.isFinite(value)) lines.push(`${name}${labels(s)} ${value}`);
    }
  }
  const h = 'codefeedr_stage_batch_duration_seconds';
  lines.push(`# HELP ${h} Time to process one batch.`, `# TYPE ${h} histogram`);
  for (const s of snapshot.stages) {
    for (const b of s.batchLatency.buckets) {
      lines.push(`${h}_bucket${labels(s, `,le="${b.leMs / 1000}"`)} ${b.count}`);
    }
    lines.push(`${h}_bucket${labels(s, ',le="+Inf"')} ${s.batchLatency.count}`);
    lines.push(`${h}_sum${labels(s)} ${s.batchLatency.sumMs / 1000}`);
    lines.push(`${h}_count${labels(s)} ${s.batchLatency.count}`);
  }
  return `${lines.join('\n')}\n`;
}
