// The dashboard server against real metrics endpoints: pipelines run in this process with
// metricsPort 0 (two of them as `worker` runs over one shared buffer), the dashboard scrapes
// them over HTTP and streams frames as server-sent events.
import { createServer as createHttpServer, request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import {
  MemoryBuffer,
  PipelineBuilder,
  defineOutput,
  sequenceInput,
  SequenceNumber,
  silentLogger,
  startMetricsServer,
  z,
  type Pipeline,
  type PipelineMetricsSnapshot,
  type RunOptions,
  type RunSummary,
} from '@codefeedr/core';
import { waitFor } from '@codefeedr/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, closedPort, expectOneError, project } from './cli-fixture.js';
import { DashboardFigures, type DashboardFrame, type WorkerSample } from './dashboard-figures.js';
import { layoutGraph } from './dashboard-layout.js';
import { metricsBaseUrl, MetricsScraper } from './dashboard-scrape.js';
import {
  startDashboardServer,
  type DashboardGraph,
  type DashboardServer,
} from './dashboard-server.js';
import { graphModelOfDescription } from './graph-renderer.js';

const drop = defineOutput({
  name: 'drop',
  description: 'discards',
  configSchema: z.object({}),
  inputTypes: [SequenceNumber] as const,
  createSink: () => ({ write() {}, flush: async () => {}, close: async () => {} }),
});

/** numbers (unbounded, rate-limited) → drop, over `buffer` (a shared one makes workers possible). */
function numbersPipeline(buffer?: MemoryBuffer): Pipeline {
  const builder = new PipelineBuilder('numbers')
    .append(sequenceInput.create('numbers', { from: 0, ratePerSecond: 5_000 }))
    .append(drop.create('drop'));
  if (buffer) builder.setBuffer(buffer);
  return builder.build();
}

interface Running {
  url: string;
  stop(): Promise<RunSummary>;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs until stopped, with its metrics endpoint on a free port; resolves once it listens. */
async function start(pipeline: Pipeline, options: RunOptions = {}): Promise<Running> {
  const controller = new AbortController();
  let url: string | undefined;
  const done = pipeline.run({
    ...options,
    logger: silentLogger,
    metricsPort: 0,
    onMetricsListening: (u) => (url = u),
    signal: controller.signal,
  });
  done.catch(() => undefined);
  await waitFor(() => url, { description: 'the metrics endpoint' });
  let stopped: Promise<RunSummary> | undefined;
  const stop = () => {
    controller.abort();
    return (stopped ??= done);
  };
  cleanups.push(stop);
  return { url: url!, stop };
}

async function dashboard(targets: string[], port = 0): Promise<DashboardServer> {
  const server = await startDashboardServer({ targets, port, intervalMs: 100 });
  cleanups.push(() => server.close());
  return server;
}

interface ServerSentEvent {
  event: string;
  data: unknown;
}

/** Reads `/events` into a list, as a browser's EventSource would; `close()` ends the stream. */
async function subscribe(url: string): Promise<{ events: ServerSentEvent[]; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${url}/events`, { signal: controller.signal });
  expect(response.headers.get('content-type')).toBe('text/event-stream');
  const events: ServerSentEvent[] = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    let pending = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      pending += value;
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined)
          events.push({ event, data: JSON.parse(data) });
      }
    }
  })();
  const close = () => controller.abort();
  cleanups.push(async () => close());
  return { events, close };
}

const frames = (events: ServerSentEvent[]) =>
  events.filter((e) => e.event === 'frame').map((e) => (e.data as { frame: DashboardFrame }).frame);
/** The DAG the stream announced: in its `state` event, or a later `graph` event. */
function graphOf(events: ServerSentEvent[]): DashboardGraph | undefined {
  const announced = events.findLast((e) => e.event === 'graph')?.data as DashboardGraph | undefined;
  const initial = (events[0]?.data as { graph: DashboardGraph | null } | undefined)?.graph;
  return announced ?? initial ?? undefined;
}
const stageOf = (frame: DashboardFrame | undefined, stage: string) =>
  frame?.stages.find((s) => s.stage === stage);

describe('dashboard server', () => {
  it('streams the DAG and growing figures of a running pipeline as server-sent events', async () => {
    const run = await start(numbersPipeline());
    const server = await dashboard([run.url]);
    const { events } = await subscribe(server.url);
    await waitFor(() => events.some((e) => e.event === 'state'), { description: 'state event' });
    expect(events[0]!.event).toBe('state');
    const graph = await waitFor(() => graphOf(events), { description: 'the graph' });
    expect(graph.pipeline).toBe('numbers');
    expect(graph.mode).toBe('inline');
    expect(graph.buffer).toEqual({ kind: 'memory', component: null });
    expect(graph.layout.nodes.map((n) => [n.id, n.kind])).toEqual([
      ['numbers', 'input'],
      ['drop', 'output'],
    ]);
    expect(graph.layout.edges.map((e) => [e.from, e.to])).toEqual([['numbers', 'drop']]);

    // Counters grow from frame to frame, and the rate is the records per second between them.
    const first = await waitFor(
      () => frames(events).find((f) => (stageOf(f, 'drop')?.recordsIn ?? 0) > 0),
      { description: 'a frame with records' },
    );
    const later = await waitFor(
      () =>
        frames(events).find(
          (f) =>
            f.at > first.at &&
            stageOf(f, 'drop')!.recordsIn > stageOf(first, 'drop')!.recordsIn &&
            stageOf(f, 'numbers')!.outPerSec > 0,
        ),
      { description: 'a later frame with more records' },
    );
    const numbers = stageOf(later, 'numbers')!;
    // The rate is the records between a frame and the one before it, per second between them.
    const all = frames(events);
    const before = all[all.indexOf(later) - 1]!;
    expect(numbers.outPerSec * ((later.at - before.at) / 1000)).toBeCloseTo(
      numbers.recordsOut - stageOf(before, 'numbers')!.recordsOut,
      6,
    );
    expect(numbers.workers).toBe(1);
    expect(later.workers).toEqual([
      {
        url: run.url,
        state: 'up',
        stages: ['numbers', 'drop'],
        error: null,
        lastSeen: later.at,
        recordsOut: numbers.recordsOut + stageOf(later, 'drop')!.recordsOut,
        outPerSec: numbers.outPerSec + stageOf(later, 'drop')!.outPerSec,
      },
    ]);
    expect(stageOf(later, 'drop')!.batchLatencyMs).not.toBeNull();

    // /state.json: the same state, once, with the throughput history for the plot.
    const state = (await (await fetch(`${server.url}/state.json`)).json()) as {
      graph: DashboardGraph;
      history: { at: number; out: Record<string, number> }[];
    };
    expect(state.graph.pipeline).toBe('numbers');
    expect(state.history.length).toBeGreaterThan(1);
    expect(Object.keys(state.history.at(-1)!.out).sort()).toEqual(['drop', 'numbers']);
  });

  it('combines the workers of a pipeline run as `worker` runs; an endpoint that does not answer is down, not a crash', async () => {
    const buffer = new MemoryBuffer();
    cleanups.push(() => buffer.close());
    const numbers = await start(numbersPipeline(buffer), { mode: 'worker', stage: 'numbers' });
    const drops = await start(numbersPipeline(buffer), { mode: 'worker', stage: 'drop' });
    const nobody = `http://127.0.0.1:${await closedPort()}`;
    const server = await dashboard([nobody, `${numbers.url}/metrics`, drops.url]);
    const { events } = await subscribe(server.url);
    const frame = await waitFor(
      () =>
        frames(events).find(
          (f) =>
            (stageOf(f, 'drop')?.recordsIn ?? 0) > 0 && (stageOf(f, 'numbers')?.outPerSec ?? 0) > 0,
        ),
      { description: 'a frame with both workers’ records' },
    );
    expect(frame.pipeline).toBe('numbers');
    expect(frame.workers.map((w) => [w.url, w.state, w.stages])).toEqual([
      [nobody, 'down', []],
      [numbers.url, 'up', ['numbers']],
      [drops.url, 'up', ['drop']],
    ]);
    expect(frame.workers[0]!.error).toBe('ECONNREFUSED');
    // The DAG comes from a worker's /pipeline.json (the down endpoint is skipped).
    const graph = await waitFor(() => graphOf(events), { description: 'the graph' });
    expect(graph.mode).toBe('worker');
    expect(graph.edgesKnown).toBe(true);
    expect(graph.layout.edges.map((e) => [e.from, e.to])).toEqual([['numbers', 'drop']]);
  });

  it('an endpoint without /pipeline.json (a worker of an older core): stages from its metrics, no edges', async () => {
    const pipeline = numbersPipeline();
    const run = await start(pipeline);
    // Core's metrics server without a graph, as workers before /pipeline.json serve it.
    const older = await startMetricsServer(() => pipeline.metrics(), 0);
    cleanups.push(() => older.close());
    const server = await dashboard([older.url]);
    const { events } = await subscribe(server.url);
    const graph = await waitFor(() => graphOf(events), { description: 'the graph' });
    expect(graph.edgesKnown).toBe(false);
    expect(graph.buffer).toBeNull();
    expect(graph.layout.nodes.map((n) => n.id)).toEqual(['numbers', 'drop']);
    expect(graph.layout.edges).toEqual([]);
    await run.stop();
  });

  it('an endpoint that accepts but never answers, or answers something else, is down with the reason', async () => {
    // A hung worker: the connection opens, no response ever comes.
    const hung = createServer(() => undefined);
    // Something else on the port: a web server that is not a metrics endpoint.
    const other = createHttpServer((_req, res) => res.writeHead(200).end('{"hello":"world"}'));
    for (const server of [hung, other]) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(
        () =>
          new Promise((resolve) => {
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close(resolve);
          }),
      );
    }
    const url = (server: { address(): unknown }) =>
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const hungUrl = url(hung);
    const otherUrl = url(other);
    hung.on('connection', (socket) => cleanups.push(async () => socket.destroy()));
    const { samples, graph } = await new MetricsScraper([hungUrl, otherUrl], 300).scrape();
    expect(samples).toEqual([
      { url: hungUrl, ok: false, error: 'no answer in time' },
      { url: otherUrl, ok: false, error: 'not a CodeFeedr metrics endpoint' },
    ]);
    expect(graph).toBeNull();
  });

  it('sums a stage over its workers and takes the lowest watermark, from real snapshots', async () => {
    // Two runs of one pipeline stand for two workers of each of its stages.
    const [a, b] = [await start(numbersPipeline()), await start(numbersPipeline())];
    await waitFor(
      async () => {
        const snapshots = await Promise.all(
          [a, b].map(
            async (r) =>
              (await (await fetch(`${r.url}/metrics.json`)).json()) as PipelineMetricsSnapshot,
          ),
        );
        return snapshots.every((s) => s.stages[1]!.recordsIn > 0);
      },
      { description: 'both runs to move records' },
    );
    const scraper = new MetricsScraper([a.url, b.url]);
    const figures = new DashboardFigures();
    const { samples, graph } = await scraper.scrape();
    expect(graph?.name).toBe('numbers');
    const frame = figures.update(samples);
    const snapshots = samples.map((s) => (s.ok ? s.snapshot : undefined)!);
    const drop = stageOf(frame, 'drop')!;
    expect(drop.workers).toBe(2);
    expect(drop.recordsIn).toBe(
      snapshots[0]!.stages[1]!.recordsIn + snapshots[1]!.stages[1]!.recordsIn,
    );
    const watermarks = snapshots.map((s) => s.stages[1]!.watermark).filter((w) => w !== null);
    expect(drop.watermark).toBe(watermarks.length === 0 ? null : Math.min(...watermarks));
  });

  it('rates, counter resets, gauges and the bounded history', () => {
    const figures = new DashboardFigures(2_000);
    const snapshot = (recordsOut: number, extra: object = {}): PipelineMetricsSnapshot => ({
      pipeline: 'p',
      mode: 'worker',
      startedAt: 0,
      stages: [
        {
          stage: 's',
          kind: 'transform',
          recordsIn: recordsOut,
          recordsOut,
          bytesIn: 0,
          bytesOut: 0,
          errors: 0,
          deadLettered: 0,
          batches: 0,
          batchLatency: { count: recordsOut / 10, sumMs: recordsOut, buckets: [] },
          backpressureMs: recordsOut / 4,
          watermark: null,
          consumerLag: null,
          eventTimeLagMs: null,
          ...extra,
        },
      ],
    });
    const sample = (url: string, s: PipelineMetricsSnapshot): WorkerSample => ({
      url,
      ok: true,
      snapshot: s,
    });
    figures.update([sample('a', snapshot(100, { consumerLag: 5, watermark: 50 }))], 1_000);
    let f = figures.update(
      [
        sample('a', snapshot(300, { consumerLag: 7, watermark: 70 })),
        sample('b', snapshot(40, { consumerLag: null, watermark: 20 })),
      ],
      2_000,
    );
    let s = stageOf(f, 's')!;
    expect(s.outPerSec).toBe(200); // b has no earlier answer: no rate yet
    expect(s.recordsOut).toBe(340);
    expect(s.consumerLag).toBe(7);
    expect(s.watermark).toBe(20);
    expect(s.backpressureShare).toBe(0.05); // 50 ms in 1 s
    expect(s.batchLatencyMs).toBe(10); // 200 ms over 20 batches
    // a restarted (its counters back near 0): the new value is what it did since.
    f = figures.update(
      [sample('a', snapshot(50)), { url: 'b', ok: false, error: 'ECONNREFUSED' }],
      3_000,
    );
    s = stageOf(f, 's')!;
    expect(s.outPerSec).toBe(50);
    expect(
      f.workers.map((w) => [w.url, w.state, w.stages, w.lastSeen, w.recordsOut, w.outPerSec]),
    ).toEqual([
      ['a', 'up', ['s'], 3_000, 50, 50],
      ['b', 'down', ['s'], 2_000, 40, 0],
    ]);
    expect(figures.history().map((p) => p.at)).toEqual([1_000, 2_000, 3_000]);
    figures.update([], 4_000);
    expect(figures.history().map((p) => p.at)).toEqual([2_000, 3_000, 4_000]);
  });

  it('refuses requests for another host name (no DNS rebinding) and serves its assets from the package', async () => {
    const server = await dashboard([]);
    const status = await new Promise<number>((resolve, reject) => {
      request(`${server.url}/state.json`, { headers: { host: `evil.example:${server.port}` } })
        .on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(421);
    const page = await (await fetch(`${server.url}/`)).text();
    expect(page).toContain('<svg id="dag"');
    expect(page).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // nothing from elsewhere
    const uplot = await fetch(`${server.url}/vendor/uPlot.iife.min.js`);
    expect(uplot.status).toBe(200);
    expect(await uplot.text()).toContain('uPlot');
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it('a port in use is a clear error', async () => {
    const first = await dashboard([]);
    await expect(startDashboardServer({ targets: [], port: first.port })).rejects.toMatchObject({
      code: 'DASHBOARD_PORT_UNAVAILABLE',
      message: expect.stringContaining('EADDRINUSE'),
    });
    const dir = project({
      'p.yaml': 'name: p\nstages:\n  - { id: numbers, use: sequence, with: { to: 3 } }\n',
    });
    const run = await cli(['run', 'p.yaml', '--dashboard', String(first.port)], dir);
    expect(run.code).toBe(1);
    expectOneError(run.stderr, 'DASHBOARD_PORT_UNAVAILABLE');
    const scrape = await cli(
      ['dashboard', '--scrape', 'http://127.0.0.1:1', '--port', String(first.port)],
      dir,
    );
    expect(scrape.code).toBe(1);
    expectOneError(scrape.stderr, 'DASHBOARD_PORT_UNAVAILABLE');
  });

  it('run --dashboard prints its URL as the metrics line is printed, and closes it with the run', async () => {
    const dir = project({
      'p.yaml': 'name: p\nstages:\n  - { id: numbers, use: sequence, with: { to: 3 } }\n',
    });
    const alone = await cli(['run', 'p.yaml', '--dashboard'], dir);
    expect(alone.code, alone.stderr).toBe(0);
    const url = /^dashboard at (http:\/\/127\.0\.0\.1:\d+)\/$/m.exec(alone.stderr)?.[1];
    expect(url, alone.stderr).toBeDefined();
    // The run's own endpoint serves the dashboard; it is announced only when asked for.
    expect(alone.stderr).not.toMatch(/^metrics at /m);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    const both = await cli(['run', 'p.yaml', '--dashboard', '--metrics-port', '0'], dir);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stderr).toMatch(/^dashboard at http:\/\/127\.0\.0\.1:\d+\/$/m);
    expect(both.stderr).toMatch(/^metrics at http:\/\/127\.0\.0\.1:\d+\/metrics$/m);
  });

  it('bad --scrape URLs and ports are usage errors (exit 2)', async () => {
    const dir = project({
      'p.yaml': 'name: p\nstages:\n  - { id: numbers, use: sequence, with: { to: 3 } }\n',
    });
    for (const args of [
      ['dashboard', '--scrape', 'not a url'],
      ['dashboard', '--scrape', 'ftp://127.0.0.1:21'],
      ['dashboard', '--scrape', 'http://127.0.0.1:9464', 'localhost:9464'],
      ['dashboard', '--scrape', 'http://127.0.0.1:9464', '--port', 'eighty'],
      ['dashboard'],
      ['run', 'p.yaml', '--dashboard', '70000'],
    ]) {
      const result = await cli(args, dir);
      expect(result.code, args.join(' ')).toBe(2);
      expectOneError(result.stderr, 'USAGE_INVALID');
    }
    expect(metricsBaseUrl('http://127.0.0.1:9464/metrics')).toBe('http://127.0.0.1:9464');
    expect(metricsBaseUrl('http://127.0.0.1:9464/metrics.json')).toBe('http://127.0.0.1:9464');
    expect(metricsBaseUrl('https://host/prefix/')).toBe('https://host/prefix');
    expect(metricsBaseUrl('http://user:pw@host:1')).toBeUndefined();
  });
});

describe('dashboard layout', () => {
  it('puts each stage right of its parents, without overlaps, and an edge per edge', () => {
    const layout = layoutGraph(
      graphModelOfDescription({
        name: 'fan',
        stages: ['events', 'pushes', 'ndjson', 'activity', 'summary'].map((id, i) => ({
          id,
          kind: i === 0 ? 'input' : id === 'ndjson' || id === 'summary' ? 'output' : 'transform',
          component: null,
          inputTypes: [],
          outputType: null,
        })),
        edges: [
          ['events', 'pushes'],
          ['events', 'ndjson'],
          ['events', 'activity'],
          ['pushes', 'activity'],
          ['activity', 'summary'],
        ].map(([from, to], inputIndex) => ({ from: from!, to: to!, inputIndex })),
      }),
    );
    const at = new Map(layout.nodes.map((n) => [n.id, n]));
    for (const e of layout.edges) expect(at.get(e.to)!.x).toBeGreaterThan(at.get(e.from)!.x);
    expect(layout.edges).toHaveLength(5);
    for (const a of layout.nodes) {
      expect(a.x + a.width).toBeLessThanOrEqual(layout.width);
      expect(a.y + a.height).toBeLessThanOrEqual(layout.height);
      for (const b of layout.nodes) {
        if (a === b) continue;
        const apart =
          a.x + a.width <= b.x ||
          b.x + b.width <= a.x ||
          a.y + a.height <= b.y ||
          b.y + b.height <= a.y;
        expect(apart, `${a.id} overlaps ${b.id}`).toBe(true);
      }
    }
  });
});
