// The command `codefeedr deploy --target kubernetes` writes really runs: each Deployment's
// container command, started here as Kubernetes would start it — the ConfigMap's file at the
// mount path, $(POD_NAME) expanded, env from the Secret's keys, in the image's working folder —
// against the real Kafka of the services harness. Both stages start, the readiness probe's
// /healthz answers on the metrics port, and every record goes through.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { waitFor, WorkerProcess } from '@codefeedr/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cli, closedPort, project } from './cli-fixture.js';
import { PIPELINE_MOUNT } from './deploy-kubernetes-manifests.js';

const brokers = process.env['CODEFEEDR_KAFKA_BROKERS'];
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const run = `${process.pid}-${Date.now() % 1_000_000}`;
const ids = { numbers: `deploy-numbers-${run}`, sink: `deploy-sink-${run}` };
const cliBin = join(import.meta.dirname, 'bin.ts');
const COUNT = 300;

interface Container {
  command: string[];
  args: string[];
  workingDir: string;
  env: {
    name: string;
    valueFrom: {
      secretKeyRef?: { key: string; optional?: boolean };
      fieldRef?: { fieldPath: string };
    };
  }[];
}

const started: WorkerProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((w) => w.stop(5_000)));
  // Not a dependency of the CLI: the project's plugin, as the pipeline found it.
  const { KafkaBuffer, kafkaBufferConfigSchema } = await import('@codefeedr/plugin-kafka');
  const buffer = new KafkaBuffer(
    kafkaBufferConfigSchema.parse({ brokers: brokers.split(','), logLevel: 'nothing' }),
  );
  for (const topic of [ids.numbers, `${ids.numbers}.dlq`, `${ids.sink}.dlq`])
    await buffer.admin.deleteTopic(topic).catch(() => undefined);
  await buffer.close();
});

describe('the worker command of a generated Deployment', () => {
  it('runs each stage against real Kafka as its pod would: starts, is ready on /healthz, processes every record', async () => {
    const dir = project(
      {
        'pipeline.yaml': [
          `name: deploy-e2e-${run}`,
          'buffer:',
          "  use: '@codefeedr/plugin-kafka:kafka'",
          '  with: { brokers: "${KAFKA_BROKERS}", logLevel: nothing, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 }',
          'stages:',
          `  - { id: ${ids.numbers}, use: sequence, with: { to: ${COUNT - 1} } }`,
          `  - { id: ${ids.sink}, use: ndjson-file, from: ${ids.numbers}, with: { path: "\${SINK_DIR}/sink.ndjson" } }`,
          '',
        ].join('\n'),
      },
      'deploy-e2e-',
    );
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-kafka': '*' } }),
    );
    // Generated where the secrets are not set, as on a CI machine.
    const generated = await cli(
      ['deploy', 'pipeline.yaml', '-t', 'kubernetes', '--out', 'k8s'],
      dir,
    );
    expect(generated.stderr).toContain('checked by their shape only');
    expect(generated.code, generated.stderr).toBe(0);
    const read = (file: string) =>
      parseAllDocuments(readFileSync(join(dir, 'k8s', file), 'utf8')).map(
        (d) => d.toJS() as Record<string, unknown>,
      );
    const [configMap] = read('pipeline-configmap.yaml');
    // The volume: the ConfigMap's keys as files under the mount path.
    const mount = join(dir, 'mount');
    mkdirSync(mount);
    for (const [key, text] of Object.entries(configMap!['data'] as Record<string, string>))
      writeFileSync(join(mount, key), text);
    const secret: Record<string, string> = { KAFKA_BROKERS: brokers, SINK_DIR: join(dir, 'out') };
    mkdirSync(secret['SINK_DIR']!);

    const start = (stage: string) => {
      const [deployment] = read(`stage-${stage}.yaml`);
      const name = (deployment!['metadata'] as { name: string }).name;
      const container = (deployment!['spec'] as { template: { spec: { containers: Container[] } } })
        .template.spec.containers[0]!;
      expect(container.command).toEqual(['codefeedr']);
      const pod = `${name}-5d8f7c9b4-x2k7q`;
      const env: Record<string, string> = {};
      for (const { name: variable, valueFrom } of container.env) {
        if (valueFrom.fieldRef) {
          expect(valueFrom.fieldRef.fieldPath).toBe('metadata.name');
          env[variable] = pod;
        } else if (secret[valueFrom.secretKeyRef!.key] !== undefined) {
          env[variable] = secret[valueFrom.secretKeyRef!.key]!;
        } else {
          expect(valueFrom.secretKeyRef!.optional, `Secret key ${variable}`).toBe(true);
        }
      }
      const port = container.args[container.args.indexOf('--metrics-port') + 1]!;
      const args = container.args.map((arg) =>
        arg
          .replace(`${PIPELINE_MOUNT}/`, `${mount}/`)
          .replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, v: string) => env[v] ?? ''),
      );
      // Pods have a port each; here they share one host.
      return { args, port, env };
    };

    const sink = start(ids.sink);
    const numbers = start(ids.numbers);
    expect(sink.args.slice(0, 6)).toEqual([
      'run',
      join(mount, 'pipeline.yaml'),
      '--stage',
      ids.sink,
      '--instance',
      sink.env['POD_NAME'],
    ]);
    const spawnWorker = async (worker: ReturnType<typeof start>) => {
      const port = String(await closedPort());
      const args = worker.args.map((arg) => (arg === worker.port ? port : arg));
      const child = new WorkerProcess({
        script: cliBin,
        args,
        // The image's working folder: the project, with its package.json and plugins.
        cwd: dir,
        env: { ...process.env, NO_COLOR: '1', ...worker.env },
      });
      started.push(child);
      return { child, port };
    };
    const sinkWorker = await spawnWorker(sink);
    // Its readiness probe, as the kubelet sends it.
    await waitFor(
      async () => {
        if (!sinkWorker.child.running)
          throw new Error(`the sink worker died:\n${sinkWorker.child.tail()}`);
        const response = await fetch(`http://127.0.0.1:${sinkWorker.port}/healthz`).catch(
          () => undefined,
        );
        return response?.status === 200;
      },
      { timeoutMs: 60_000, description: 'the sink worker to answer /healthz' },
    );
    // --metrics-host 0.0.0.0: the kubelet probes the pod's address, not its loopback.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    if (external !== undefined) {
      const response = await fetch(`http://${external}:${sinkWorker.port}/healthz`);
      expect(response.status).toBe(200);
    }
    const numbersWorker = await spawnWorker(numbers);
    const out = join(secret['SINK_DIR']!, 'sink.ndjson');
    await waitFor(
      () =>
        existsSync(out) &&
        readFileSync(out, 'utf8')
          .split('\n')
          .filter((l) => l !== '').length >= COUNT,
      { timeoutMs: 60_000, description: `all ${COUNT} records in the sink` },
    );
    // The input ends; its end of stream reaches the sink through Kafka and both exit 0.
    expect((await numbersWorker.child.exited).code, numbersWorker.child.tail()).toBe(0);
    expect((await sinkWorker.child.exited).code, sinkWorker.child.tail()).toBe(0);
    const values = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
    expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, n) => n));
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
