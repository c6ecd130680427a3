import { Document } from 'yaml';
import { cliVersion } from './cli-package.js';
import { DeployKedaUnsupportedError } from './deploy-errors.js';
import { kubernetesName } from './deploy-names.js';
import type { DeployPlan, DeployStage } from './deploy-plan.js';

export interface KubernetesOptions {
  /** Container image with `codefeedr` on its PATH and the pipeline's plugins installed. */
  readonly image: string;
  readonly namespace?: string;
  /** The project folder inside the image (its package.json lists the plugins). */
  readonly workdir: string;
  readonly metricsPort: number;
  /** Name of the Secret the `${VAR}`s come from (keys = variable names). */
  readonly secretName?: string;
  /** A KEDA ScaledObject per consuming stage, scaling on consumer lag. */
  readonly keda?: { readonly lagThreshold: number };
}

export const DEFAULT_METRICS_PORT = 9464;
/** Where the ConfigMap holding the pipeline file is mounted in every pod. */
export const PIPELINE_MOUNT = '/etc/codefeedr';

/** The image deploy names unless told otherwise: built from the documented Dockerfile. */
export function defaultImage(): string {
  return `codefeedr:${cliVersion()}`;
}

export type KubernetesObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

/** One YAML file of the output: its objects, and comments for whoever applies them. */
export interface ManifestFile {
  readonly name: string;
  readonly objects: readonly KubernetesObject[];
  readonly comment?: string;
}

/** The ConfigMap key (and file name in the pods) of the pipeline file: its own name when Kubernetes allows it. */
export function pipelineFileKey(plan: DeployPlan): string {
  const name = plan.source.kind === 'file' ? plan.source.fileName : 'pipeline.yaml';
  return /^[-._a-zA-Z0-9]+$/.test(name) && name !== '.' && name !== '..' ? name : 'pipeline.yaml';
}

/** The container's arguments: `codefeedr run` as a worker of `stage`, named after its pod. */
export function workerArgs(plan: DeployPlan, stage: DeployStage, instance: string): string[] {
  const target =
    plan.source.kind === 'file' ? `${PIPELINE_MOUNT}/${pipelineFileKey(plan)}` : plan.source.name;
  return [
    'run',
    target,
    '--stage',
    stage.id,
    '--instance',
    instance,
    ...plan.sets.flatMap((set) => ['--set', set]),
    '--no-progress',
  ];
}

function labels(plan: DeployPlan, stage?: DeployStage): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'codefeedr',
    'app.kubernetes.io/instance': kubernetesName(plan.pipeline),
    ...(stage ? { 'app.kubernetes.io/component': kubernetesName(stage.id) } : {}),
    'app.kubernetes.io/managed-by': 'codefeedr-deploy',
  };
}

function metadata(plan: DeployPlan, options: KubernetesOptions, name: string, stage?: DeployStage) {
  return {
    name,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    labels: labels(plan, stage),
  };
}

export function secretName(plan: DeployPlan, options: Pick<KubernetesOptions, 'secretName'>) {
  return options.secretName ?? kubernetesName(plan.pipeline, 'secrets');
}

function deployment(plan: DeployPlan, options: KubernetesOptions, stage: DeployStage) {
  const name = kubernetesName(plan.pipeline, stage.id);
  const selector = {
    'app.kubernetes.io/instance': kubernetesName(plan.pipeline),
    'app.kubernetes.io/component': kubernetesName(stage.id),
  };
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path: '/healthz', port: 'metrics' },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });
  const configMap = kubernetesName(plan.pipeline, 'pipeline');
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(plan, options, name, stage),
    spec: {
      replicas: stage.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: {
          labels: labels(plan, stage),
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(options.metricsPort),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: {
          // `codefeedr run` drains, flushes and commits on SIGTERM within seconds.
          terminationGracePeriodSeconds: 30,
          // No `<SERVICE>_PORT`-style variables: a `${VAR:-default}` of the pipeline must not
          // pick up a Service's address. Workers never call the Kubernetes API.
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          containers: [
            {
              name: 'worker',
              image: options.image,
              workingDir: options.workdir,
              command: ['codefeedr'],
              args: [
                ...workerArgs(plan, stage, '$(POD_NAME)'),
                '--metrics-port',
                String(options.metricsPort),
                '--metrics-host',
                '0.0.0.0',
              ],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ...plan.variables.map((v) => ({
                  name: v.name,
                  valueFrom: {
                    secretKeyRef: {
                      name: secretName(plan, options),
                      key: v.name,
                      ...(v.optional ? { optional: true } : {}),
                    },
                  },
                })),
              ],
              ports: [{ name: 'metrics', containerPort: options.metricsPort, protocol: 'TCP' }],
              livenessProbe: { ...probe(10, 3), initialDelaySeconds: 10 },
              readinessProbe: probe(5, 2),
              ...(plan.source.kind === 'file'
                ? {
                    volumeMounts: [{ name: 'pipeline', mountPath: PIPELINE_MOUNT, readOnly: true }],
                  }
                : {}),
            },
          ],
          ...(plan.source.kind === 'file'
            ? { volumes: [{ name: 'pipeline', configMap: { name: configMap } }] }
            : {}),
        },
      },
    },
  } satisfies KubernetesObject;
}

/** KEDA's Kafka scaler on the stage's consumer group, one trigger per topic it reads. */
function scaledObject(
  plan: DeployPlan,
  options: KubernetesOptions,
  stage: DeployStage,
  lagThreshold: number,
): KubernetesObject {
  const { brokers } = plan;
  if (brokers.kind === 'unknown') throw new DeployKedaUnsupportedError(brokers.why);
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: metadata(plan, options, kubernetesName(plan.pipeline, stage.id), stage),
    spec: {
      scaleTargetRef: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: kubernetesName(plan.pipeline, stage.id),
      },
      minReplicaCount: stage.replicas,
      // Never more workers than partitions: the extra ones would idle.
      maxReplicaCount: stage.maxReplicas,
      triggers: stage.inputs.map((input) => ({
        type: 'kafka',
        metadata: {
          ...(brokers.kind === 'env'
            ? { bootstrapServersFromEnv: brokers.variable }
            : { bootstrapServers: brokers.brokers.join(',') }),
          consumerGroup: stage.group,
          topic: input.topic,
          lagThreshold: String(lagThreshold),
          // KEDA counts lag from where the consumer would start.
          offsetResetPolicy: stage.offsetReset,
          allowIdleConsumers: 'false',
        },
      })),
    },
  };
}

/**
 * The manifests of a plan: a ConfigMap with the pipeline file (its `${VAR}`s unexpanded), and
 * per stage a Deployment (and a ScaledObject with KEDA). Secrets are referenced, never written.
 */
export function kubernetesManifests(plan: DeployPlan, options: KubernetesOptions): ManifestFile[] {
  if (options.keda && plan.buffer !== 'kafka')
    throw new DeployKedaUnsupportedError(
      `its buffer is ${plan.buffer}, and the ScaledObjects written are KEDA's Kafka scaler on consumer lag`,
    );
  const files: ManifestFile[] = [];
  if (plan.source.kind === 'file') {
    files.push({
      name: 'pipeline-configmap.yaml',
      comment: secretComment(plan, options),
      objects: [
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: metadata(plan, options, kubernetesName(plan.pipeline, 'pipeline')),
          data: { [pipelineFileKey(plan)]: plan.source.text },
        },
      ],
    });
  }
  for (const stage of plan.stages) {
    const objects: KubernetesObject[] = [deployment(plan, options, stage)];
    if (options.keda && stage.kind !== 'input')
      objects.push(scaledObject(plan, options, stage, options.keda.lagThreshold));
    files.push({ name: `stage-${kubernetesName(stage.id)}.yaml`, objects });
  }
  return files;
}

/** What to create before applying: the Secret's keys, never its values. */
export function secretComment(plan: DeployPlan, options: KubernetesOptions): string | undefined {
  if (plan.variables.length === 0) return undefined;
  const name = secretName(plan, options);
  const ns = options.namespace === undefined ? '' : ` -n ${options.namespace}`;
  return [
    ` The pipeline's \${VAR}s come from the Secret "${name}", one key per variable`,
    ` (optional ones may be left out): ${plan.variables.map((v) => `${v.name}${v.optional ? ' (optional)' : ''}`).join(', ')}.`,
    ' Create it before applying, e.g.:',
    `   kubectl create secret generic ${name}${ns} ${plan.variables.map((v) => `--from-literal=${v.name}=…`).join(' ')}`,
  ].join('\n');
}

/** The files as YAML text: documents separated by `---`, comments first. */
export function renderManifest(file: ManifestFile): string {
  return file.objects
    .map((object, i) => {
      const doc = new Document(object);
      if (i === 0 && file.comment !== undefined) doc.commentBefore = file.comment;
      return doc.toString({ lineWidth: 0 });
    })
    .join('---\n');
}
