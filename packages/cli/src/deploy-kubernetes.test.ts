// `codefeedr deploy --target kubernetes`: every object checked against the Kubernetes 1.34 API
// schemas (kubernetes-models) and KEDA's ScaledObject CRD schema (@kubernetes-models/keda),
// with unknown fields refused as `kubectl apply --validate=strict` does; every stage's worker
// command; secrets referenced and never written.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  defineTransform,
  PipelineBuilder,
  ndjsonFileOutput,
  sequenceInput,
  SequenceNumber,
  z,
} from '@codefeedr/core';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { cli, expectOneError, project } from './cli-fixture.js';
import { kubernetesManifests, PIPELINE_MOUNT } from './deploy-kubernetes-manifests.js';
import { kubernetesName } from './deploy-names.js';
import { parseReplicas, pipelineWorkers, type DeployPlan } from './deploy-plan.js';

const stamp = `${process.pid}${Date.now() % 100_000}`;
/** Shapes that break naive substitution and URL pasting. */
const SECRETS = {
  KAFKA_BROKERS: `broker-${stamp}.internal:9092`,
  API_TOKEN: `tok%20en:/@x${stamp}`,
};

type Manifest = Record<string, unknown> & {
  kind: string;
  metadata: { name: string; namespace?: string };
};

/**
 * Validates `object` with the model's compiled API schema, reading it through a proxy: a
 * field the validator never looked at is one the API does not know (the API's schemas allow
 * unknown fields; the API server with strict field validation refuses them).
 */
function expectValid(object: Manifest): void {
  const seen = new Set<string>();
  const watch = (value: unknown, path: string): unknown =>
    typeof value !== 'object' || value === null
      ? value
      : new Proxy(value, {
          get(target, key, receiver) {
            if (typeof key === 'string' && Object.hasOwn(target, key)) {
              seen.add(`${path}/${key}`);
              return watch((target as Record<string, unknown>)[key], `${path}/${key}`);
            }
            return Reflect.get(target, key, receiver) as unknown;
          },
        });
  const all: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (typeof value !== 'object' || value === null) return;
    for (const [key, child] of Object.entries(value)) {
      all.push(`${path}/${key}`);
      walk(child, `${path}/${key}`);
    }
  };
  walk(object, '');
  const Model = { ConfigMap, Deployment, ScaledObject }[object.kind];
  expect(Model, `a schema for ${object.kind}`).toBeDefined();
  // The model's validate() on the proxy itself (a model instance would be a deep copy).
  (Model!.prototype.validate as (this: unknown) => void).call(watch(object, ''));
  expect(
    all.filter((path) => !seen.has(path)),
    `fields of ${object.kind} ${object.metadata.name} the API does not know`,
  ).toEqual([]);
}

/** KEDA's kafka scaler metadata (keda.sh/docs/latest/scalers/apache-kafka, the keys deploy writes): the CRD types it as a string map only. */
const kafkaTriggerMetadata = z
  .object({
    bootstrapServers: z
      .string()
      .regex(/^[^,\s]+(,[^,\s]+)*$/)
      .optional(),
    bootstrapServersFromEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    consumerGroup: z.string().min(1),
    topic: z.string().min(1),
    lagThreshold: z.string().regex(/^[1-9]\d*$/),
    offsetResetPolicy: z.enum(['earliest', 'latest']),
    allowIdleConsumers: z.enum(['true', 'false']),
  })
  .strict()
  .refine((m) => (m.bootstrapServers === undefined) !== (m.bootstrapServersFromEnv === undefined));

function documents(text: string): Manifest[] {
  return parseAllDocuments(text).map((doc) => {
    expect(doc.errors).toEqual([]);
    return doc.toJS() as Manifest;
  });
}

interface Container {
  args: string[];
  command: string[];
  env: { name: string; valueFrom?: Record<string, Record<string, unknown>> }[];
}

function containerOf(deployment: Manifest): Container & Record<string, unknown> {
  const spec = deployment['spec'] as {
    template: { spec: { containers: (Container & Record<string, unknown>)[] } };
  };
  return spec.template.spec.containers[0]!;
}

function expectNoSecret(where: string, text: string): void {
  for (const [name, secret] of Object.entries(SECRETS)) {
    for (const form of [secret, encodeURIComponent(secret), ...secret.split(/[@/:%]/)].filter(
      (f) => f.length >= 6,
    ))
      expect(text.includes(form), `${name} (as "${form}") leaked into ${where}`).toBe(false);
  }
}

/** A project whose package.json lists the plugin, as `codefeedr run` finds plugins. */
function withPlugin(files: Record<string, string>, plugin = '@codefeedr/plugin-kafka'): string {
  const dir = project(files);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'cli-fixture', version: '1.0.0', dependencies: { [plugin]: '*' } }),
  );
  return dir;
}

const PIPELINE = [
  'name: clicks',
  'buffer: { use: \'@codefeedr/plugin-kafka:kafka\', with: { brokers: "${KAFKA_BROKERS}" } }',
  'stages:',
  '  - { id: numbers, use: sequence, with: { to: "${COUNT:-5}" } }',
  '  - { id: sink.v2, use: ndjson-file, from: numbers, with: { path: "/tmp/out-${API_TOKEN}.ndjson" } }',
  '',
].join('\n');

describe('codefeedr deploy --target kubernetes', () => {
  it('writes a ConfigMap with the file and a Deployment per stage running `codefeedr run --stage`, valid against the API schemas, with no secret in it', async () => {
    const dir = withPlugin({ 'pipeline.yaml': PIPELINE });
    const result = await cli(
      ['deploy', 'pipeline.yaml', '--target', 'kubernetes', '--keda', '--namespace', 'streams'],
      dir,
      SECRETS,
    );
    expect(result.code, result.stderr).toBe(0);
    expectNoSecret('stdout', result.stdout);
    expectNoSecret('stderr', result.stderr);
    const objects = documents(result.stdout);
    for (const object of objects) {
      expectValid(object);
      expect(object.metadata.namespace).toBe('streams');
    }
    expect(objects.map((o) => o.kind)).toEqual([
      'ConfigMap',
      'Deployment',
      'Deployment',
      'ScaledObject',
    ]);
    // The check itself: a misspelt field, and a wrong type, are caught.
    const typo = structuredClone(objects[1]!);
    const typoContainer = containerOf(typo);
    typoContainer['livenesProbe'] = typoContainer['livenessProbe'];
    expect(() => expectValid(typo)).toThrow(/the API does not know/);
    typoContainer['livenessProbe'] = { httpGet: { path: 1, port: 'metrics' } };
    delete typoContainer['livenesProbe'];
    expect(() => expectValid(typo)).toThrow(/must be string/);
    const configMap = objects[0]!;
    // The file as written: `${VAR}`s unexpanded, mounted where the args name it.
    expect(configMap['data']).toEqual({ 'pipeline.yaml': PIPELINE });

    const deployments = objects.filter((o) => o.kind === 'Deployment');
    for (const [stage, deployment] of [
      ['numbers', deployments[0]!],
      ['sink.v2', deployments[1]!],
    ] as const) {
      const container = containerOf(deployment);
      expect(container.command).toEqual(['codefeedr']);
      expect(container.args.slice(0, 6)).toEqual([
        'run',
        `${PIPELINE_MOUNT}/pipeline.yaml`,
        '--stage',
        stage,
        '--instance',
        '$(POD_NAME)',
      ]);
      expect(container.args.slice(6)).toEqual([
        '--no-progress',
        '--metrics-port',
        '9464',
        '--metrics-host',
        '0.0.0.0',
      ]);
      // Each worker is named after its pod (unique among the stage's workers).
      expect(container.env[0]).toEqual({
        name: 'POD_NAME',
        valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
      });
      expect(container.env.slice(1)).toEqual([
        {
          name: 'KAFKA_BROKERS',
          valueFrom: { secretKeyRef: { name: 'clicks-secrets', key: 'KAFKA_BROKERS' } },
        },
        {
          name: 'COUNT',
          valueFrom: { secretKeyRef: { name: 'clicks-secrets', key: 'COUNT', optional: true } },
        },
        {
          name: 'API_TOKEN',
          valueFrom: { secretKeyRef: { name: 'clicks-secrets', key: 'API_TOKEN' } },
        },
      ]);
      for (const probe of ['livenessProbe', 'readinessProbe'])
        expect(container[probe]).toMatchObject({ httpGet: { path: '/healthz', port: 'metrics' } });
      expect(container['ports']).toEqual([
        { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
      ]);
      const template = (deployment['spec'] as { template: { metadata: Record<string, unknown> } })
        .template;
      expect(template.metadata['annotations']).toEqual({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9464',
        'prometheus.io/path': '/metrics',
      });
      expect(deployment['spec']).toMatchObject({ replicas: 1 });
      expect(deployment['spec']).toMatchObject({
        template: { spec: { enableServiceLinks: false, automountServiceAccountToken: false } },
      });
    }
    // KEDA on the consuming stage only: its group and topic as core names them.
    const scaled = objects[3]!['spec'] as {
      scaleTargetRef: { name: string };
      maxReplicaCount: number;
      triggers: { type: string; metadata: Record<string, string> }[];
    };
    expect(scaled.scaleTargetRef.name).toBe(deployments[1]!.metadata.name);
    expect(scaled.maxReplicaCount).toBe(1);
    expect(scaled.triggers).toHaveLength(1);
    expect(scaled.triggers[0]!.type).toBe('kafka');
    expect(kafkaTriggerMetadata.parse(scaled.triggers[0]!.metadata)).toEqual({
      bootstrapServersFromEnv: 'KAFKA_BROKERS',
      consumerGroup: 'sink.v2',
      topic: 'numbers',
      lagThreshold: '100',
      offsetResetPolicy: 'earliest',
      allowIdleConsumers: 'false',
    });
  });

  it('--out writes one file per stage and the ConfigMap; --json names them; no secret in any', async () => {
    const dir = withPlugin({ 'pipeline.yaml': PIPELINE });
    const result = await cli(
      [
        '--json',
        'deploy',
        'pipeline.yaml',
        '-t',
        'kubernetes',
        '--out',
        'k8s',
        '--image',
        'registry.example/cf:1',
      ],
      dir,
      SECRETS,
    );
    expect(result.code, result.stdout).toBe(0);
    const files = readdirSync(join(dir, 'k8s')).sort();
    expect(files).toEqual(
      [
        'pipeline-configmap.yaml',
        'stage-numbers.yaml',
        `stage-${kubernetesName('sink.v2')}.yaml`,
      ].sort(),
    );
    expect(result.json()['files']).toEqual(
      files
        .map((name) => ({ name, path: join(dir, 'k8s', name) }))
        .sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
    for (const file of files) {
      const text = readFileSync(join(dir, 'k8s', file), 'utf8');
      expectNoSecret(file, text);
      for (const object of documents(text)) expectValid(object);
    }
    const configmap = readFileSync(join(dir, 'k8s', 'pipeline-configmap.yaml'), 'utf8');
    // Whoever applies it is told which Secret keys to create, never their values.
    expect(configmap).toContain(
      'kubectl create secret generic clicks-secrets --from-literal=KAFKA_BROKERS=…',
    );
    const [deployment] = documents(readFileSync(join(dir, 'k8s', 'stage-numbers.yaml'), 'utf8'));
    expect(containerOf(deployment!)['image']).toBe('registry.example/cf:1');
  });

  it('plans replicas from the partitions core gives each topic, and refuses more (exit 2)', async () => {
    const dir = withPlugin({ 'pipeline.yaml': PIPELINE });
    const tooMany = await cli(
      ['deploy', 'pipeline.yaml', '-t', 'kubernetes', '--replicas', 'sink.v2=2'],
      dir,
      SECRETS,
    );
    expect(tooMany.code).toBe(2);
    expectOneError(tooMany.stderr, 'DEPLOY_REPLICAS_INVALID');
    expect(tooMany.stderr).toContain('reads topic "numbers" (1 partition)');
    const input = await cli(
      ['deploy', 'pipeline.yaml', '-t', 'kubernetes', '--replicas', 'numbers=2'],
      dir,
      SECRETS,
    );
    expect(input.code).toBe(2);
    expect(input.stderr).toContain('input stage');
    const unknown = await cli(
      ['deploy', 'pipeline.yaml', '-t', 'kubernetes', '--replicas', 'nope=1'],
      dir,
      SECRETS,
    );
    expect(unknown.code).toBe(2);
    expectOneError(unknown.stderr, 'USAGE_INVALID');

    // A pipeline file sets partitions with a stage's `options:`: 3 partitions, 3 workers at most,
    // whether the file's variables are set here (configs checked) or not (structure only).
    const wideFile = PIPELINE.replace(
      '{ id: numbers, use: sequence, with: { to: "${COUNT:-5}" } }',
      '{ id: numbers, use: sequence, with: { to: "${COUNT:-5}" }, options: { partitions: 3 } }',
    );
    const wideDir = withPlugin({ 'pipeline.yaml': wideFile });
    for (const env of [SECRETS, {}]) {
      const three = await cli(
        ['deploy', 'pipeline.yaml', '-t', 'kubernetes', '--replicas', 'sink.v2=3'],
        wideDir,
        env,
      );
      expect(three.code, three.stderr).toBe(0);
      const sink = documents(three.stdout).find(
        (d) => d['kind'] === 'Deployment' && JSON.stringify(d).includes('--stage","sink.v2"'),
      );
      expect((sink!['spec'] as { replicas: number }).replicas).toBe(3);
      const four = await cli(
        ['deploy', 'pipeline.yaml', '-t', 'kubernetes', '--replicas', 'sink.v2=4'],
        wideDir,
        env,
      );
      expect(four.code).toBe(2);
      expect(four.stderr).toContain('reads topic "numbers" (3 partitions)');
    }

    // A pipeline built in TypeScript sets partitions: 4 partitions, 4 workers at most.
    const kafka = {
      kind: 'buffer' as const,
      name: 'kafka',
      description: 'test double of the Kafka buffer component (never created)',
      configSchema: z.object({ brokers: z.array(z.string()) }),
      capabilities: { transactions: true, replay: true },
      guarantees: [],
      create: () => {
        throw new Error('not created by deploy');
      },
    };
    const pipeline = new PipelineBuilder('wide')
      .append(sequenceInput.create('numbers', { to: 3 }))
      .append(ndjsonFileOutput.create('out', { path: '/dev/null' }))
      .setBuffer(kafka as never, { brokers: ['a:9092', 'b:9092'] })
      .setStageOptions('numbers', { partitions: 4, topic: 'numbers-topic' })
      .setStageOptions('out', { group: 'out-group', start: 'latest' })
      .build();
    expect(() => pipelineWorkers(pipeline, parseReplicas(['5']))).toThrow(/at most 4 workers/);
    const { buffer, stages } = pipelineWorkers(pipeline, parseReplicas(['4']));
    expect(stages.map((s) => [s.id, s.replicas, s.maxReplicas, s.group])).toEqual([
      ['numbers', 1, 1, 'numbers'],
      ['out', 4, 4, 'out-group'],
    ]);
    const plan: DeployPlan = {
      pipeline: 'wide',
      source: { kind: 'prebuilt', name: 'wide' },
      sets: [],
      variables: [],
      buffer,
      brokers: { kind: 'list', brokers: ['a:9092', 'b:9092'] },
      stages,
      configsChecked: true,
    };
    const [out] = kubernetesManifests(plan, {
      image: 'x',
      workdir: '/app',
      metricsPort: 9464,
      keda: { lagThreshold: 50 },
    }).slice(-1);
    for (const object of out!.objects) expectValid(object as Manifest);
    const [deployment, scaledObject] = out!.objects;
    expect((deployment!['spec'] as { replicas: number }).replicas).toBe(4);
    // A prebuilt pipeline has no file: no ConfigMap, the name is the run target.
    expect(containerOf(deployment as Manifest).args.slice(0, 4)).toEqual([
      'run',
      'wide',
      '--stage',
      'out',
    ]);
    expect(scaledObject!['spec']).toMatchObject({
      minReplicaCount: 4,
      maxReplicaCount: 4,
      triggers: [
        {
          type: 'kafka',
          metadata: {
            bootstrapServers: 'a:9092,b:9092',
            consumerGroup: 'out-group',
            topic: 'numbers-topic',
            lagThreshold: '50',
            offsetResetPolicy: 'latest',
          },
        },
      ],
    });
  });

  it('a stage that reads a named output scales on that output’s topic', () => {
    const split = defineTransform({
      name: 'split',
      description: 'odd numbers to their own output',
      configSchema: z.object({}),
      inputTypes: [SequenceNumber] as const,
      outputType: SequenceNumber,
      outputs: { odd: SequenceNumber },
      transform: ([n]) => ({ main: n, odd: n.filter((x) => x % 2 === 1) }),
    }).create('split');
    const kafka = { kind: 'kafka', capabilities: { transactions: true, replay: true } };
    const pipeline = new PipelineBuilder('named')
      .append(sequenceInput.create('numbers', { to: 3 }))
      .append(split)
      .append(ndjsonFileOutput.create('all', { path: '/dev/null' }))
      .edge('split:odd', ndjsonFileOutput.create('odd', { path: '/dev/null' }))
      .setBuffer(kafka as never)
      .setStageOptions('split', { partitions: 3, topic: 'split-topic' })
      .build();
    const { stages } = pipelineWorkers(pipeline, parseReplicas(['all=3', 'odd=3']));
    expect(stages.map((s) => [s.id, s.inputs.map((i) => i.topic), s.maxReplicas])).toEqual([
      ['numbers', [], 1],
      ['split', ['numbers'], 1],
      ['all', ['split-topic'], 3],
      ['odd', ['split-topic.odd'], 3],
    ]);
  });

  it('refuses a pipeline without a shared buffer, as `run --stage` does (exit 2)', async () => {
    const lines = [
      'name: local-only',
      'stages:',
      '  - { id: numbers, use: sequence, with: { to: 3 } }',
      '  - { id: out, use: ndjson-file, from: numbers, with: { path: /dev/null } }',
      '',
    ];
    const none = await cli(
      ['deploy', 'p.yaml', '-t', 'kubernetes'],
      project({ 'p.yaml': lines.join('\n') }),
    );
    expect(none.code).toBe(2);
    expectOneError(none.stderr, 'DEPLOY_BUFFER_NOT_SHARED');
    expect(none.stderr).toContain('has no `buffer:`');
    const memory = await cli(
      ['--json', 'deploy', 'p.yaml', '-t', 'systemd'],
      project({ 'p.yaml': [lines[0], 'buffer: { use: memory }', ...lines.slice(1)].join('\n') }),
    );
    expect(memory.code).toBe(2);
    expect(memory.json()).toMatchObject({ ok: false, error: { code: 'DEPLOY_BUFFER_NOT_SHARED' } });
    // A prebuilt pipeline name is accepted as `run` accepts it; the shipped ones have no buffer.
    const prebuilt = await cli(
      ['deploy', 'github-summary', '-t', 'kubernetes'],
      withPlugin({}, '@codefeedr/pipelines-github'),
    );
    expect(prebuilt.code).toBe(2);
    expectOneError(prebuilt.stderr, 'DEPLOY_BUFFER_NOT_SHARED');
    expect(prebuilt.stderr).toContain('Pipeline "github-summary" has no `buffer:`');
  });

  it('--keda needs a Kafka buffer; options of the other target are refused', async () => {
    const dir = withPlugin(
      {
        'p.yaml': [
          'name: r',
          "buffer: { use: '@codefeedr/plugin-redis:redis', with: { url: 'redis://127.0.0.1:1' } }",
          'stages:',
          '  - { id: numbers, use: sequence, with: { to: 3 } }',
          '  - { id: out, use: ndjson-file, from: numbers, with: { path: /dev/null } }',
          '',
        ].join('\n'),
      },
      '@codefeedr/plugin-redis',
    );
    const keda = await cli(['deploy', 'p.yaml', '-t', 'kubernetes', '--keda'], dir);
    expect(keda.code).toBe(2);
    expectOneError(keda.stderr, 'DEPLOY_KEDA_UNSUPPORTED');
    const plain = await cli(['deploy', 'p.yaml', '-t', 'kubernetes'], dir);
    expect(plain.code, plain.stderr).toBe(0);
    const misplaced = await cli(['deploy', 'p.yaml', '-t', 'systemd', '--image', 'x'], dir);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toContain('--image is for --target kubernetes');
    const noTarget = await cli(['deploy', 'p.yaml'], dir);
    expect(noTarget.code).toBe(2);
  });
});
