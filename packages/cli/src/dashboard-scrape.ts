import type { PipelineGraphDocument, PipelineMetricsSnapshot } from '@codefeedr/core';
import type { WorkerSample } from './dashboard-figures.js';

/**
 * The base URL of a metrics endpoint as `--scrape` accepts it: `http://host:port`, with or
 * without a trailing `/metrics`, `/metrics.json` or `/pipeline.json` (what `run` prints is
 * accepted as it is). Undefined for anything that is not an http(s) URL.
 */
export function metricsBaseUrl(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  const path = url.pathname.replace(/\/+$/, '').replace(/\/(metrics(\.json)?|pipeline\.json)$/, '');
  return `${url.origin}${path}`;
}

const base = (url: string) => metricsBaseUrl(url) ?? url;

export interface ScrapeResult {
  samples: WorkerSample[];
  /** The first target's (in `--scrape` order) `/pipeline.json`, once one answered it. */
  graph: PipelineGraphDocument | null;
}

const reason = (error: unknown): string => {
  const e = error as {
    name?: string;
    message?: string;
    cause?: { code?: string; message?: string };
  };
  if (e?.name === 'TimeoutError') return 'no answer in time';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
};

/**
 * Reads `/metrics.json` of every target, and `/pipeline.json` of each until it has it (a
 * worker's DAG does not change while it runs; a worker that goes down is asked again when it
 * is back, in case it came back with another pipeline). A target that does not answer, answers
 * an error or something that is not a snapshot is a failed sample: the dashboard shows it down.
 */
export class MetricsScraper {
  private targets: string[];
  private readonly graphs = new Map<string, PipelineGraphDocument | 'none'>();

  constructor(
    targets: readonly string[],
    private readonly timeoutMs = 2_000,
  ) {
    this.targets = targets.map(base);
  }

  setTargets(targets: readonly string[]): void {
    this.targets = targets.map(base);
  }

  async scrape(): Promise<ScrapeResult> {
    const samples = await Promise.all(this.targets.map((url) => this.sample(url)));
    let graph: PipelineGraphDocument | null = null;
    for (const url of this.targets) {
      const g = this.graphs.get(url);
      if (g !== undefined && g !== 'none') {
        graph = g;
        break;
      }
    }
    return { samples, graph };
  }

  private async sample(url: string): Promise<WorkerSample> {
    try {
      const snapshot = (await this.get(`${url}/metrics.json`)) as PipelineMetricsSnapshot;
      if (typeof snapshot?.pipeline !== 'string' || !Array.isArray(snapshot.stages))
        return { url, ok: false, error: 'not a CodeFeedr metrics endpoint' };
      if (!this.graphs.has(url)) {
        // Older workers serve no /pipeline.json: the dashboard then draws stages without edges.
        const graph = (await this.get(`${url}/pipeline.json`).catch(() => undefined)) as
          PipelineGraphDocument | undefined;
        this.graphs.set(url, Array.isArray(graph?.stages) ? graph : 'none');
      }
      return { url, ok: true, snapshot };
    } catch (error) {
      this.graphs.delete(url);
      return { url, ok: false, error: reason(error) };
    }
  }

  private async get(url: string): Promise<unknown> {
    const response = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}`);
    }
    return response.json();
  }
}
