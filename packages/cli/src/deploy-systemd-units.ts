import { posix } from 'node:path';
import { systemdName } from './deploy-names.js';
import type { DeployPlan, DeployStage } from './deploy-plan.js';
import { workerArgs } from './deploy-kubernetes-manifests.js';

export interface SystemdOptions {
  /** The project folder on the machine: package.json with the plugins, the pipeline file. */
  readonly workdir: string;
  /** The codefeedr executable (default: the project's `node_modules/.bin/codefeedr`). */
  readonly bin?: string;
  /** Where the `${VAR}`s' values are (default `/etc/codefeedr/<pipeline>.env`). */
  readonly envFile?: string;
  readonly user?: string;
  /** Serve /metrics and /healthz on this port (one worker of the stage per machine then). */
  readonly metricsPort?: number;
}

export interface UnitFile {
  readonly name: string;
  readonly text: string;
}

export const DEFAULT_SYSTEMD_WORKDIR = '/opt/codefeedr';

/**
 * One word of a unit's command line: `$` and `%` doubled (systemd would expand them), quoted
 * when it has spaces, quotes or backslashes.
 */
function word(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function envFileOf(plan: DeployPlan, options: SystemdOptions): string {
  return options.envFile ?? `/etc/codefeedr/${systemdName(plan.pipeline)}.env`;
}

export function unitName(plan: DeployPlan, stage: DeployStage): string {
  return `${systemdName('codefeedr', plan.pipeline, stage.id)}@.service`;
}

function unit(plan: DeployPlan, options: SystemdOptions, stage: DeployStage): UnitFile {
  const bin = options.bin ?? posix.join(options.workdir, 'node_modules', '.bin', 'codefeedr');
  const args = workerArgs(plan, stage, '\0').map((arg) => (arg === '\0' ? '%i' : word(arg)));
  if (plan.source.kind === 'file') args[1] = word(plan.source.path);
  if (options.metricsPort !== undefined)
    args.push('--metrics-port', String(options.metricsPort), '--metrics-host', '0.0.0.0');
  const lines = [
    '# Written by `codefeedr deploy --target systemd`. One worker per instance:',
    `#   systemctl enable --now ${unitName(plan, stage).replace('@.service', '@1.service')}`,
    '# The instance name (%i) is the worker name: unique among the stage’s workers.',
    '[Unit]',
    `Description=CodeFeedr pipeline ${plan.pipeline.replace(/%/g, '%%').replace(/\p{Cc}/gu, ' ')}, stage ${stage.id}, worker %i`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    `WorkingDirectory=${options.workdir}`,
    ...(plan.variables.length > 0 ? [`EnvironmentFile=${envFileOf(plan, options)}`] : []),
    ...(options.user === undefined ? [] : [`User=${options.user}`]),
    `ExecStart=${word(bin)} ${args.join(' ')}`,
    // `codefeedr run` drains, flushes and commits on SIGTERM, then exits 0.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'Restart=on-failure',
    'RestartSec=5s',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ];
  return { name: unitName(plan, stage), text: lines.join('\n') };
}

/** The variables' names for the EnvironmentFile, each empty: values are filled in on the machine. */
function envExample(plan: DeployPlan, options: SystemdOptions): UnitFile {
  const file = envFileOf(plan, options);
  return {
    name: `${posix.basename(file)}.example`,
    text: [
      `# The \${VAR}s of pipeline ${plan.pipeline}: fill in and install as ${file}`,
      '# (mode 0600, owned by root: systemd reads it before dropping privileges).',
      ...plan.variables.map((v) => `${v.optional ? '# optional: ' : ''}${v.name}=`),
      '',
    ].join('\n'),
  };
}

/** A templated unit per stage (`codefeedr-<pipeline>-<stage>@.service`) and the env file's keys. */
export function systemdUnits(plan: DeployPlan, options: SystemdOptions): UnitFile[] {
  return [
    ...plan.stages.map((stage) => unit(plan, options, stage)),
    ...(plan.variables.length > 0 ? [envExample(plan, options)] : []),
  ];
}
