import { describe, expect, it } from 'vitest';
import { waitFor } from '@codefeedr/testkit';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { silentLogger } from './console-logger.js';
import { defineMessageType } from './message-type.js';
import type { PipelineMetricsSnapshot } from './metrics.js';
import { startMetricsServer, type PipelineGraphDocument } from './metrics-server.js';
import { MemoryBuffer } from './memory-buffer.js';
import { SequenceNumber, sequenceInput } from './sequence-input.js';
import { PipelineBuilder } from './pipeline-builder.js';
import type { StreamRecord } from './record.js';

const Num = defineMessageType('test.Number', 1, z.number());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition lines (enough of the format to check ours strictly). */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m) throw new Error(`not a valid exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    if (Number.isNaN(value)) throw new Error(`bad value in: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

describe('metrics endpoint', () => {
  it('serves /metrics (Prometheus text) and /metrics.json over HTTP while the pipeline runs', async () => {
    let next = 1;
    const input = defineInput({
      name: 'counter',
      description: 'counts forever',
      configSchema: z.object({}),
      outputType: Num,
      createSource: () => ({
        async poll(max: number) {
          await new Promise((r) => setTimeout(r, 1));
          const out: StreamRecord<number>[] = [];
          for (let i = 0; i < max; i++, next++) out.push({ value: next, timestamp: next });
          return out;
        },
        position: () => next,
        restore: () => {},
        close: async () => {},
      }),
    }).create('counter');
    const evens = defineTransform({
      name: 'evens',
      description: 'keeps even numbers',
      configSchema: z.object({}),
      inputTypes: [Num] as const,
      outputType: Num,
      transform: ([s]) => s.filter((n) => n % 2 === 0),
    }).create('evens');
    const sink = defineOutput({
      name: 'drop',
      description: 'discards',
      configSchema: z.object({}),
      inputTypes: [Num] as const,
      createSink: () => ({ write() {}, flush: async () => {}, close: async () => {} }),
    }).create('drop');
    const pipeline = new PipelineBuilder('metrics "demo"')
      .append(input)
      .append(evens)
      .append(sink)
      .build();
    const controller = new AbortController();
    let url: string | undefined;
    const running = pipeline.run({
      logger: silentLogger,
      batchSize: 100,
      metricsPort: 0,
      onMetricsListening: (u) => (url = u),
      signal: controller.signal,
    });
    try {
      const deadline = Date.now() + 10_000;
      while (
        url === undefined ||
        (pipeline.metrics().stages.find((s) => s.stage === 'drop')?.recordsOut ?? 0) < 500
      ) {
        if (Date.now() > deadline)
          throw new Error('pipeline did not process 500 records within 10 s');
        await new Promise((r) => setTimeout(r, 5));
      }
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      const { samples, types } = parseExposition(await res.text());
      expect(types.get('codefeedr_stage_records_in_total')).toBe('counter');
      expect(types.get('codefeedr_stage_batch_duration_seconds')).toBe('histogram');
      const value = (name: string, stage: string) =>
        samples.find((s) => s.name === name && s.labels.stage === stage)?.value;
      expect(samples[0]!.labels.pipeline).toBe('metrics \\"demo\\"'); // label values escaped
      const evensIn = value('codefeedr_stage_records_in_total', 'evens')!;
      const evensOut = value('codefeedr_stage_records_out_total', 'evens')!;
      expect(evensIn).toBeGreaterThanOrEqual(500);
      // Half of a run of consecutive integers starting at 1, as counted from the input side.
      expect(evensOut).toBe(Math.floor(evensIn / 2));
      const count = value('codefeedr_stage_batch_duration_seconds_count', 'evens')!;
      const inf = samples.find(
        (s) =>
          s.name === 'codefeedr_stage_batch_duration_seconds_bucket' &&
          s.labels.stage === 'evens' &&
          s.labels.le === '+Inf',
      )!.value;
      expect(inf).toBe(count);

      const json = (await (await fetch(`${url}/metrics.json`)).json()) as PipelineMetricsSnapshot;
      expect(json.pipeline).toBe('metrics "demo"');
      expect(json.stages.map((s) => s.stage)).toEqual(['counter', 'evens', 'drop']);
      expect(json.stages[1]!.recordsIn).toBeGreaterThanOrEqual(evensIn);
      expect((await fetch(`${url}/nope`)).status).toBe(404);
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    } finally {
      controller.abort();
    }
    const summary = await running;
    expect(summary.status).toBe('stopped');
    // The endpoint closes with the run.
    await expect(fetch(`${url}/metrics`)).rejects.toThrow();
  });

  it('serves /pipeline.json: the DAG, the stages this worker runs and the buffer, no config values', async () => {
    // A config value that must never leave the process (a secret arrives the same way).
    const secret = 'do-not-serve-me-4711';
    const keep = defineOutput({
      name: 'keep',
      description: 'discards, with a token',
      configSchema: z.object({ token: z.string() }),
      inputTypes: [SequenceNumber] as const,
      createSink: () => ({ write() {}, flush: async () => {}, close: async () => {} }),
    });
    const buffer = new MemoryBuffer();
    const pipeline = new PipelineBuilder('graph-doc')
      .append(sequenceInput.create('numbers', { from: 0 }))
      .append(keep.create('drop', { token: secret }))
      .setBuffer(buffer)
      .build();
    const controller = new AbortController();
    let url: string | undefined;
    const running = pipeline.run({
      mode: 'worker',
      stage: 'drop',
      logger: silentLogger,
      metricsPort: 0,
      onMetricsListening: (u) => (url = u),
      signal: controller.signal,
    });
    try {
      await waitFor(() => url !== undefined, { description: 'the metrics endpoint' });
      const res = await fetch(`${url}/pipeline.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      const text = await res.text();
      expect(text).not.toContain(secret);
      const doc = JSON.parse(text) as PipelineGraphDocument;
      expect(doc).toEqual({
        ...pipeline.describe(),
        mode: 'worker',
        running: ['drop'],
        buffer: { kind: 'memory', component: null },
      });
      expect(doc.stages.map((s) => [s.id, s.kind])).toEqual([
        ['numbers', 'input'],
        ['drop', 'output'],
      ]);
      expect(doc.edges).toEqual([{ from: 'numbers', to: 'drop', inputIndex: 0 }]);
      expect(await (await fetch(`${url}/nope`)).text()).toContain('/pipeline.json');
    } finally {
      controller.abort();
    }
    await running;
    await buffer.close();
  });

  it('without a graph, /pipeline.json is not served', async () => {
    const server = await startMetricsServer(
      () => ({ pipeline: 'p', mode: 'inline', startedAt: 0, stages: [] }),
      0,
    );
    try {
      expect((await fetch(`${server.url}/pipeline.json`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('a port in use is a clear error', async () => {
    const first = await startMetricsServer(
      () => ({ pipeline: 'p', mode: 'inline', startedAt: 0, stages: [] }),
      0,
    );
    try {
      await expect(
        startMetricsServer(
          () => ({ pipeline: 'p', mode: 'inline', startedAt: 0, stages: [] }),
          first.port,
        ),
      ).rejects.toMatchObject({
        code: 'METRICS_PORT_UNAVAILABLE',
        message: expect.stringContaining('EADDRINUSE'),
      });
    } finally {
      await first.close();
    }
  });
});
