import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { CommandContext } from '../program.js';
import { UsageError } from '../cli-errors.js';
import {
  DEFAULT_METRICS_PORT,
  defaultImage,
  kubernetesManifests,
  renderManifest,
  secretComment,
} from '../deploy-kubernetes-manifests.js';
import { deployPlan, parseReplicas } from '../deploy-plan.js';
import { DEFAULT_SYSTEMD_WORKDIR, envFileOf, systemdUnits } from '../deploy-systemd-units.js';
import { collect } from './validate.js';

interface DeployOptions {
  target: 'kubernetes' | 'systemd';
  out?: string;
  replicas: string[];
  set: string[];
  image?: string;
  namespace?: string;
  secret?: string;
  workdir?: string;
  metricsPort?: string;
  keda?: boolean;
  kedaLag: string;
  bin?: string;
  envFile?: string;
  user?: string;
}

function port(option: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65_535)
    throw new UsageError(`${option} ${value} is not a port number (1-65535)`);
  return n;
}

/** Values that end up on one line of a unit file or manifest: no line breaks. */
function oneLine(option: string, value: string | undefined): string | undefined {
  if (value !== undefined && (/\p{Cc}/u.test(value) || value === ''))
    throw new UsageError(`${option}: give a non-empty value on one line`);
  return value;
}

/** `--out <dir>`: a folder (created when missing), never a file. */
function outFolder(cwd: string, dir: string): string {
  const absolute = resolve(cwd, dir);
  try {
    if (!statSync(absolute).isDirectory())
      throw new UsageError(`--out ${dir}: ${absolute} is a file; give a folder`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(absolute, { recursive: true });
  return absolute;
}

export function registerDeployCommand(program: Command, context: CommandContext): void {
  program
    .command('deploy')
    .description(
      'Write what runs each stage of a pipeline as its own workers: Kubernetes manifests or systemd units (secrets referenced, never written).',
    )
    .argument('<pipeline>', 'pipeline file (YAML or JSON) or prebuilt pipeline name')
    .addOption(
      new Option('-t, --target <target>', 'what to write for')
        .choices(['kubernetes', 'systemd'])
        .makeOptionMandatory(),
    )
    .option('-o, --out <dir>', 'write one file per stage (and the ConfigMap) here; default stdout')
    .option(
      '--replicas <n|stage=n...>',
      'workers per stage: N for every stage that reads a buffer, stage=N for one (default 1; at most its input partitions)',
      collect,
      [],
    )
    .option(
      '--set <key=value...>',
      'override config as `run` does (passed to every worker)',
      collect,
      [],
    )
    .option('--image <image>', `kubernetes: container image (default ${defaultImage()})`)
    .option('-n, --namespace <namespace>', 'kubernetes: namespace of every object')
    .option(
      '--secret <name>',
      'kubernetes: Secret holding the ${VAR}s (default <pipeline>-secrets)',
    )
    .option(
      '--workdir <dir>',
      `the project folder (package.json with the plugins) in the image or on the machine (default /app; systemd ${DEFAULT_SYSTEMD_WORKDIR})`,
    )
    .option(
      '--metrics-port <port>',
      `metrics and /healthz port (kubernetes default ${DEFAULT_METRICS_PORT}; systemd: none unless given)`,
    )
    .option(
      '--keda',
      'kubernetes: a KEDA ScaledObject per consuming stage, on consumer lag (Kafka)',
    )
    .option(
      '--keda-lag <records>',
      'with --keda: consumer lag per worker that adds a worker',
      '100',
    )
    .option(
      '--bin <path>',
      'systemd: the codefeedr executable (default <workdir>/node_modules/.bin/codefeedr)',
    )
    .option(
      '--env-file <path>',
      'systemd: EnvironmentFile with the ${VAR}s (default /etc/codefeedr/<pipeline>.env)',
    )
    .option('--user <user>', 'systemd: run the workers as this user')
    .action(async (pipelineArg: string, options: DeployOptions, command: Command) => {
      const out = context.output(command);
      try {
        const kubernetes = options.target === 'kubernetes';
        const misplaced = kubernetes
          ? (['bin', 'envFile', 'user'] as const).filter((k) => options[k] !== undefined)
          : (['image', 'namespace', 'secret', 'keda'] as const).filter(
              (k) => options[k] !== undefined,
            );
        if (misplaced.length > 0)
          throw new UsageError(
            `--${misplaced[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for --target ${kubernetes ? 'systemd' : 'kubernetes'}`,
          );
        for (const key of [
          'image',
          'namespace',
          'secret',
          'workdir',
          'bin',
          'envFile',
          'user',
        ] as const)
          oneLine(`--${key}`, options[key]);
        if (
          options.namespace !== undefined &&
          !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(options.namespace)
        )
          throw new UsageError(
            `--namespace ${options.namespace}: not a Kubernetes namespace (lowercase letters, digits and -)`,
          );
        if (
          options.secret !== undefined &&
          !/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(options.secret)
        )
          throw new UsageError(
            `--secret ${options.secret}: not a Kubernetes Secret name (lowercase letters, digits, - and .)`,
          );
        const lag = Number(options.kedaLag);
        if (!/^\d+$/.test(options.kedaLag) || lag < 1)
          throw new UsageError(
            `--keda-lag ${options.kedaLag}: expected a number of records from 1`,
          );
        const metricsPort =
          options.metricsPort === undefined
            ? undefined
            : port('--metrics-port', options.metricsPort);
        const replicas = parseReplicas(options.replicas);
        const dir = options.out === undefined ? undefined : outFolder(out.io.cwd, options.out);
        const plan = await deployPlan(out.io.cwd, pipelineArg, out.io.env, options.set, replicas);
        if (!plan.configsChecked)
          out.note(
            `note: ${plan.variables
              .filter((v) => !v.optional && out.io.env[v.name] === undefined)
              .map((v) => v.name)
              .join(
                ', ',
              )} not set here, so stage configs were checked by their shape only; the workers check them when they start`,
          );
        let files: { name: string; text: string }[];
        if (kubernetes) {
          const k8sOptions = {
            image: options.image ?? defaultImage(),
            workdir: options.workdir ?? '/app',
            metricsPort: metricsPort ?? DEFAULT_METRICS_PORT,
            ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
            ...(options.secret === undefined ? {} : { secretName: options.secret }),
            ...(options.keda ? { keda: { lagThreshold: lag } } : {}),
          };
          files = kubernetesManifests(plan, k8sOptions).map((f) => ({
            name: f.name,
            text: renderManifest(f),
          }));
          const secrets = secretComment(plan, k8sOptions);
          if (secrets !== undefined && dir !== undefined) out.note(secrets.replace(/^ /gm, ''));
        } else {
          const systemdOptions = {
            workdir: options.workdir ?? DEFAULT_SYSTEMD_WORKDIR,
            ...(options.bin === undefined ? {} : { bin: options.bin }),
            ...(options.envFile === undefined ? {} : { envFile: options.envFile }),
            ...(options.user === undefined ? {} : { user: options.user }),
            ...(metricsPort === undefined ? {} : { metricsPort }),
          };
          files = systemdUnits(plan, systemdOptions);
          if (plan.variables.length > 0)
            out.note(
              `The \${VAR}s are read from ${envFileOf(plan, systemdOptions)} (keys in the .env.example file).`,
            );
        }
        if (dir !== undefined) {
          for (const file of files) writeFileSync(join(dir, file.name), file.text);
          for (const file of files) out.note(`wrote ${join(options.out!, file.name)}`);
        } else if (!out.json) {
          out.io.stdout.write(
            kubernetes
              ? files.map((f) => f.text).join('---\n')
              : files.map((f) => `# ---- ${f.name}\n${f.text}`).join('\n'),
          );
        }
        out.data({
          ok: true,
          pipeline: plan.pipeline,
          target: options.target,
          stages: plan.stages.map((s) => ({
            id: s.id,
            replicas: s.replicas,
            maxReplicas: s.maxReplicas,
          })),
          variables: plan.variables.map((v) => v.name),
          files: files.map((f) => ({
            name: f.name,
            ...(dir === undefined ? { text: f.text } : { path: join(dir, f.name) }),
          })),
        });
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
