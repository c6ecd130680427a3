import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { CodefeedrError, type PipelineGraphDocument } from '@codefeedr/core';
import { CLI_DIR } from './cli-package.js';
import {
  DashboardFigures,
  type DashboardFrame,
  type ThroughputPoint,
} from './dashboard-figures.js';
import { layoutGraph, type DashboardLayout } from './dashboard-layout.js';
import { MetricsScraper } from './dashboard-scrape.js';
import { graphModelOfDescription } from './graph-renderer.js';

/** The dashboard's port is taken (or cannot be bound): the same shape as core's MetricsServerError. */
export class DashboardServerError extends CodefeedrError {
  constructor(host: string, port: number, cause: unknown) {
    super(
      'DASHBOARD_PORT_UNAVAILABLE',
      `Cannot serve the dashboard on ${host}:${port} (${(cause as NodeJS.ErrnoException)?.code ?? String(cause)}). Pick a free port, or leave the port out for any free port.`,
      { host, port },
      { cause },
    );
  }
}

/** What the page draws: the pipeline's shape, laid out. */
export interface DashboardGraph {
  pipeline: string;
  mode: string;
  buffer: { kind: string; component: string | null } | null;
  /** False when no endpoint serves /pipeline.json: stages are known from the metrics, edges are not. */
  edgesKnown: boolean;
  layout: DashboardLayout;
}

export interface DashboardState {
  graph: DashboardGraph | null;
  frame: DashboardFrame | null;
  history: ThroughputPoint[];
}

export interface DashboardServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The metrics endpoints to show (as metricsBaseUrl accepts them). */
  setTargets(urls: readonly string[]): void;
  close(): Promise<void>;
}

export interface DashboardOptions {
  targets: readonly string[];
  port: number;
  /** How often the endpoints are scraped and the page updated (default 1000 ms). */
  intervalMs?: number;
}

const HOST = '127.0.0.1';

/** The page, its script and style, and uPlot from the installed package: nothing from a CDN. */
function loadAssets(): Map<string, { type: string; body: string }> {
  const page = join(CLI_DIR, 'dashboard');
  const uplot = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  const assets = new Map<string, { type: string; body: string }>();
  for (const [route, file, type] of [
    ['/', join(page, 'index.html'), 'text/html; charset=utf-8'],
    ['/dashboard.js', join(page, 'dashboard.js'), 'text/javascript; charset=utf-8'],
    ['/dashboard.css', join(page, 'dashboard.css'), 'text/css; charset=utf-8'],
    [
      '/vendor/uPlot.iife.min.js',
      join(uplot, 'uPlot.iife.min.js'),
      'text/javascript; charset=utf-8',
    ],
    ['/vendor/uPlot.min.css', join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ] as const) {
    assets.set(route, { type, body: readFileSync(file, 'utf8') });
  }
  return assets;
}

/** The DAG of the graph document; without one, the stages the metrics name (no edges). */
function dashboardGraph(
  document: PipelineGraphDocument | null,
  frame: DashboardFrame,
): DashboardGraph | null {
  if (document !== null) {
    return {
      pipeline: document.name,
      mode: document.mode,
      buffer: document.buffer,
      edgesKnown: true,
      layout: layoutGraph(graphModelOfDescription(document)),
    };
  }
  if (frame.pipeline === null) return null;
  return {
    pipeline: frame.pipeline,
    mode: frame.mode ?? 'unknown',
    buffer: null,
    edgesKnown: false,
    layout: layoutGraph(
      graphModelOfDescription({
        name: frame.pipeline,
        stages: frame.stages.map((s) => ({
          id: s.stage,
          kind: s.kind as 'input',
          component: null,
          inputTypes: [],
          outputType: null,
        })),
        edges: [],
      }),
    ),
  };
}

/**
 * Serves the live dashboard on 127.0.0.1: the page (`/`), its assets, `/events` (server-sent
 * events: `state` on connect, then a `frame` per scrape and `graph` when the DAG changes) and
 * `/state.json` (the same, once). Every `intervalMs` it scrapes the targets' `/metrics.json`.
 * Requests naming another host are refused (a web page elsewhere cannot read it through DNS
 * rebinding): no data leaves the machine.
 */
export async function startDashboardServer(options: DashboardOptions): Promise<DashboardServer> {
  const assets = loadAssets();
  const scraper = new MetricsScraper(options.targets);
  const figures = new DashboardFigures();
  const state: DashboardState = { graph: null, frame: null, history: [] };
  const clients = new Set<ServerResponse>();
  let port = options.port;

  const send = (res: ServerResponse, event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const host = req.headers.host ?? '';
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('Misdirected request\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const asset = assets.get(path === '/index.html' ? '/' : path);
    if (asset !== undefined) {
      res
        .writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' })
        .end(asset.body);
    } else if (path === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      res.write('retry: 1000\n\n');
      send(res, 'state', { ...state, history: figures.history() });
      clients.add(res);
      req.on('close', () => clients.delete(res));
    } else if (path === '/state.json') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ...state, history: figures.history() }));
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('Not found: the dashboard is at /\n');
    }
  };

  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const { samples, graph: document } = await scraper.scrape();
      const frame = figures.update(samples);
      const graph = dashboardGraph(document, frame);
      const graphChanged = JSON.stringify(graph) !== JSON.stringify(state.graph);
      state.frame = frame;
      if (graphChanged) state.graph = graph;
      const point = figures.history().at(-1);
      for (const client of clients) {
        if (graphChanged) send(client, 'graph', graph);
        send(client, 'frame', { frame, point });
      }
    } catch {
      // An endpoint answered something malformed: this frame is skipped, the next scrape retries.
    } finally {
      busy = false;
    }
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new DashboardServerError(HOST, options.port, error)));
    server.listen(options.port, HOST, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const timer = setInterval(() => void tick(), options.intervalMs ?? 1_000);
  timer.unref();
  void tick();
  return {
    url: `http://${HOST}:${port}`,
    port,
    setTargets(urls) {
      scraper.setTargets(urls);
      void tick();
    },
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        for (const client of clients) client.end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
