import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CodefeedrError } from './errors.js';
import { toPrometheusText, type PipelineMetricsSnapshot } from './metrics.js';
import type { PipelineDescription, RunMode } from './pipeline.js';

export class MetricsServerError extends CodefeedrError {
  constructor(host: string, port: number, cause: unknown) {
    super(
      'METRICS_PORT_UNAVAILABLE',
      `Cannot serve metrics on ${host}:${port} (${(cause as NodeJS.ErrnoException)?.code ?? String(cause)}). Pick a free port, or 0 for any free port.`,
      { host, port },
      { cause },
    );
  }
}

/**
 * The shape of a running pipeline as `/pipeline.json` serves it, so a dashboard that scrapes
 * `--stage` workers can draw the whole DAG: stage ids, kinds, components and message types, the
 * edges, the buffer. Never config values, so never secrets.
 */
export interface PipelineGraphDocument extends PipelineDescription {
  mode: RunMode;
  /** The stages this process runs: every stage, or a worker's one. */
  running: string[];
  /**
   * What the edges go through: `kind` as the buffer reports it (`memory`, `kafka`, …) and
   * `component`, the buffer component's name when the pipeline was given one (null for an
   * instance, or for the embedded memory buffer).
   */
  buffer: { kind: string; component: string | null };
}

export interface MetricsServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text), `/metrics.json` from `snapshot()` and `/healthz`, and
 * `/pipeline.json` from `graph()` when given. Port 0 picks a free port. Binds to `host` (default
 * 127.0.0.1: metrics stay local unless asked otherwise).
 */
export async function startMetricsServer(
  snapshot: () => PipelineMetricsSnapshot,
  port: number,
  host = '127.0.0.1',
  graph?: () => PipelineGraphDocument,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(toPrometheusText(snapshot()));
    } else if (path === '/metrics.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(snapshot()));
    } else if (path === '/pipeline.json' && graph !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(graph()));
    } else if (path === '/healthz') {
      // Liveness for process managers and Kubernetes probes: the run's event loop answers.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(
          `Not found: try /metrics, /metrics.json${graph === undefined ? '' : ', /pipeline.json'} or /healthz\n`,
        );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new MetricsServerError(host, port, error)));
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
