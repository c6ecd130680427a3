// The dashboard in a real (headless, system) Chromium, watching real pipelines run by the built
// CLI: a GH Archive replay through the typed transforms (`run --dashboard`), and two `--stage`
// workers over Kafka (`dashboard --scrape`). Build first:
// npx lerna run build --scope @codefeedr/cli --include-dependencies
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { KafkaBuffer, kafkaBufferConfigSchema } from '@codefeedr/plugin-kafka';
import { waitFor } from '@codefeedr/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, closedPort, exited, project, REPO, spawnCli } from './cli-fixture.js';
import type { GraphModel } from './graph-renderer.js';

// The repository's browser harness (test/services), loaded at run time: it is outside this
// package's sources, so the package's own type check does not take it in.
interface ChromiumHarness {
  launchChromium(): Promise<Browser>;
  pageErrors(page: Page): string[];
}
const chromium = (await import(
  pathToFileURL(join(REPO, 'test', 'services', 'chromium.ts')).href
)) as ChromiumHarness;

const brokers = process.env['CODEFEEDR_KAFKA_BROKERS']?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const SCREENSHOTS = join(REPO, '.tmp', 'screenshots');

/**
 * The one full GH Archive hour of the shipped fixture (2015-01-01 12:00–12:59Z, 8,273 events):
 * replayed paced by event time, it lasts long enough to watch. (The fixture's other events span
 * 2012–2023: paced, the replay would wait years between them.)
 */
function archiveHour(): string {
  const all = gunzipSync(
    readFileSync(join(REPO, 'test', 'fixtures', 'github', 'events.ndjson.gz')),
  ).toString('utf8');
  const lines = all.split('\n').filter((l) => l.includes('"created_at":"2015-01-01T12:'));
  expect(lines.length).toBe(8_273);
  return `${lines.join('\n')}\n`;
}

type Child = ReturnType<typeof spawnCli>;
const children: Child[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
  }
});

function spawn(args: string[], dir: string): Child {
  const child = spawnCli(args, dir, { stdout: '/dev/null' });
  children.push(child);
  return child;
}

/** Stops a process as Ctrl-C would and expects it to end well. */
async function stop(child: Child): Promise<void> {
  child.kill('SIGTERM');
  const { code } = await exited(child);
  expect(code, child.output.stderr).toBe(0);
}

/** The URL a process printed on stderr as `<what> at <url>`. */
function printedUrl(child: Child, what: 'dashboard' | 'metrics'): Promise<string> {
  const pattern =
    what === 'dashboard'
      ? /dashboard at (http:\/\/\S+?)\/?$/m
      : /metrics at (http:\/\/\S+)\/metrics$/m;
  return waitFor(
    () => {
      if (child.exitCode !== null)
        throw new Error(`exited ${child.exitCode}: ${child.output.stderr}`);
      return pattern.exec(child.output.stderr)?.[1];
    },
    { timeoutMs: 60_000, description: `the ${what} URL on stderr` },
  );
}

/** A stage's figure as the stage table shows it, as a number (`12,345` → 12345; `—` → NaN). */
async function figure(page: Page, stage: string, field: string): Promise<number> {
  const text = await page
    .locator(`#stages tr[data-stage="${stage}"] td[data-field="${field}"]`)
    .textContent();
  return Number((text ?? '').replace(/,/g, ''));
}

/** Reads the figure until it is above zero, then until it is above that first reading. */
async function expectGrowing(page: Page, stage: string, field: string): Promise<void> {
  const first = await waitFor(
    async () => {
      const n = await figure(page, stage, field);
      return n > 0 ? n : undefined;
    },
    { timeoutMs: 60_000, description: `${stage} ${field} above 0` },
  );
  const second = await waitFor(
    async () => {
      const n = await figure(page, stage, field);
      return n > first ? n : undefined;
    },
    { timeoutMs: 30_000, description: `${stage} ${field} to grow past ${first}` },
  );
  expect(second).toBeGreaterThan(first);
}

/** Every stage is one node of the SVG DAG, every edge one arrow between the two. */
async function expectDag(page: Page, graph: Pick<GraphModel, 'stages' | 'edges'>): Promise<void> {
  for (const s of graph.stages) await page.waitForSelector(`#dag .node[data-stage="${s.id}"]`);
  expect(await page.locator('#dag .node').count()).toBe(graph.stages.length);
  for (const s of graph.stages) {
    const node = page.locator(`#dag .node[data-stage="${s.id}"]`);
    expect(await node.locator('.title').textContent()).toBe(s.id);
    expect(await node.getAttribute('class')).toContain(`kind-${s.kind}`);
  }
  expect(await page.locator('#dag .edge-group').count()).toBe(graph.edges.length);
  for (const e of graph.edges) {
    expect(
      await page.locator(`#dag .edge-group[data-from="${e.from}"][data-to="${e.to}"]`).count(),
      `edge ${e.from} → ${e.to}`,
    ).toBe(1);
  }
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `dashboard-${name}.png`), fullPage: true });
}

describe('dashboard in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launchChromium();
  }, 600_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('watches the github-summary replay over the memory buffer (`run --mode local --dashboard`): every stage and edge drawn, counters growing, no console errors', async () => {
    const dir = project({ 'hour.ndjson': archiveHour() }, 'dashboard-');
    const deps = { dependencies: { '@codefeedr/pipelines-github': '*' } };
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'dash', ...deps }));
    // The DAG as `codefeedr graph` describes it: what the page must draw.
    const graphed = await cli(['--json', 'graph', 'github-summary'], dir);
    expect(graphed.code, graphed.stderr).toBe(0);
    const expected = graphed.json().graph as GraphModel;
    const run = spawn(
      [
        'run',
        'github-summary',
        '--mode',
        'local', // every stage its own task, joined by the memory buffer
        '--set',
        `paths=${join(dir, 'hour.ndjson')}`,
        '--set',
        'speed=120', // the hour in 30 s
        '--set',
        `output=${join(dir, 'events.ndjson')}`,
        '--dashboard',
      ],
      dir,
    );
    const url = await printedUrl(run, 'dashboard');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const errors = chromium.pageErrors(page);
    await page.goto(`${url}/`);
    await expectDag(page, expected);
    expect(await page.locator('#pipeline').textContent()).toBe('github-summary');
    expect(await page.title()).toBe('github-summary · CodeFeedr dashboard');
    expect(await page.locator('#mode').textContent()).toBe('local');
    const input = expected.stages.find((s) => s.kind === 'input')!.id;
    const outputs = expected.stages.filter((s) => s.kind === 'output').map((s) => s.id);
    await expectGrowing(page, input, 'recordsOut');
    await expectGrowing(page, outputs[0]!, 'recordsIn');
    // The node's own figures and the plot are live too.
    expect(
      await page
        .locator(`#dag .node[data-stage="${input}"] [data-field="outPerSec"]`)
        .textContent(),
    ).toMatch(/^\d/);
    expect(await page.locator('#plot .uplot canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('#connection').textContent()).toBe('live');
    await screenshot(page, 'replay');
    expect(errors).toEqual([]);
    await page.close();
    await stop(run);
  }, 180_000);

  it('scrapes two `run --stage` workers over Kafka (`dashboard --scrape`): the DAG from a worker, both counters growing, a dead endpoint shown down', async () => {
    const id = randomBytes(4).toString('hex');
    const events = `events-${id}`;
    const out = `out-${id}`;
    const dir = project(
      {
        'hour.ndjson': archiveHour(),
        'p.yaml': [
          `name: dash-kafka-${id}`,
          `buffer: { use: '@codefeedr/plugin-kafka:kafka', with: { brokers: [${brokers.map((b) => `'${b}'`).join(', ')}], logLevel: nothing } }`,
          'stages:',
          `  - { id: ${events}, use: '@codefeedr/plugin-github:replay', with: { paths: hour.ndjson, speed: 120 } }`,
          `  - { id: ${out}, use: ndjson-file, from: ${events}, with: { path: out.ndjson } }`,
          '',
        ].join('\n'),
      },
      'dashboard-kafka-',
    );
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'dash-kafka',
        dependencies: { '@codefeedr/plugin-kafka': '*', '@codefeedr/plugin-github': '*' },
      }),
    );
    try {
      const reader = spawn(['run', 'p.yaml', '--stage', out, '--metrics-port', '0'], dir);
      const producer = spawn(['run', 'p.yaml', '--stage', events, '--metrics-port', '0'], dir);
      const [readerUrl, producerUrl] = await Promise.all([
        printedUrl(reader, 'metrics'),
        printedUrl(producer, 'metrics'),
      ]);
      const nobody = `http://127.0.0.1:${await closedPort()}`;
      const board = spawn(
        ['dashboard', '--scrape', producerUrl, `${readerUrl}/metrics`, nobody],
        dir,
      );
      const url = await printedUrl(board, 'dashboard');

      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const errors = chromium.pageErrors(page);
      await page.goto(`${url}/`);
      await expectDag(page, {
        stages: [
          { id: events, kind: 'input', component: 'replay', inputTypes: [], outputType: null },
          { id: out, kind: 'output', component: 'ndjson-file', inputTypes: [], outputType: null },
        ],
        edges: [{ from: events, to: out, inputIndex: 0, type: null }],
      });
      expect(await page.locator('#mode').textContent()).toBe('worker');
      expect(await page.locator('#dag .edge-label').textContent()).toContain('via kafka');
      await expectGrowing(page, events, 'recordsOut');
      await expectGrowing(page, out, 'recordsIn');
      // One row per endpoint: the two workers up with their stage, the third down.
      const rows = page.locator('#workers tbody tr');
      expect(await rows.count()).toBe(3);
      expect(
        await page.locator(`#workers tr[data-url="${producerUrl}"]`).getAttribute('data-state'),
      ).toBe('up');
      expect(
        await page.locator(`#workers tr[data-url="${readerUrl}"]`).getAttribute('data-state'),
      ).toBe('up');
      // Each worker's own records out: all of them come from the one worker of each stage.
      for (const [workerUrl, stage] of [
        [producerUrl, events],
        [readerUrl, out],
      ] as const) {
        const own = await page
          .locator(`#workers tr[data-url="${workerUrl}"] td`)
          .nth(3)
          .textContent();
        expect(Number(own!.replace(/,/g, ''))).toBeGreaterThan(0);
        expect(
          await page.locator(`#workers tr[data-url="${workerUrl}"] td`).nth(2).textContent(),
        ).toBe(stage);
      }
      const dead = page.locator(`#workers tr[data-url="${nobody}"]`);
      expect(await dead.getAttribute('data-state')).toBe('down');
      expect(await dead.textContent()).toContain('ECONNREFUSED');
      await screenshot(page, 'kafka');
      expect(errors).toEqual([]);
      await page.close();
      await stop(board);
      expect(board.output.stderr).not.toMatch(/^error /m);
      await stop(producer);
      await stop(reader);
    } finally {
      const buffer = new KafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }),
      );
      for (const topic of [events, `${events}.dlq`, `${out}.dlq`])
        await buffer.admin.deleteTopic(topic).catch(() => undefined);
      await buffer.close();
    }
  }, 180_000);
});
