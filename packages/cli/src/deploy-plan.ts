import { readFileSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve } from 'node:path';
import {
  namedOutputTopic,
  parentRefsOf,
  parseOutputRef,
  type Pipeline,
  type StageOptions,
} from '@codefeedr/core';
import { loadPipeline } from '@codefeedr/registry';
import { isMap, isScalar, isSeq, parseDocument, visit, type Scalar } from 'yaml';
import { UsageError } from './cli-errors.js';
import { DeployBufferNotSharedError, DeployReplicasError } from './deploy-errors.js';
import { checkPipelineFile, isPipelineFileArgument, prebuiltPipeline } from './pipeline-source.js';

/** A `${VAR}` of the pipeline file: a secret the workers get from their environment. */
export interface DeployVariable {
  readonly name: string;
  /** Every reference has a default (`${VAR:-x}`): the run works without it. */
  readonly optional: boolean;
}

/** A topic a stage reads, with the partitions core creates it with. */
export interface DeployInput {
  readonly stage: string;
  readonly topic: string;
  readonly partitions: number;
}

export interface DeployStage {
  readonly id: string;
  readonly kind: 'input' | 'transform' | 'output';
  /** Consumer group of its buffer consumer (core's groupOf: the stage id unless set). */
  readonly group: string;
  readonly inputs: readonly DeployInput[];
  /** Where its consumer starts without a committed offset (core: earliest unless `start: 'latest'`). */
  readonly offsetReset: 'earliest' | 'latest';
  /** Workers that can share its work: its input partitions (1 for an input stage). */
  readonly maxReplicas: number;
  readonly replicas: number;
}

/** Where the buffer's Kafka brokers come from, for KEDA (never a secret's value). */
export type DeployBrokers =
  | { readonly kind: 'list'; readonly brokers: readonly string[] }
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'unknown'; readonly why: string };

/** Everything a deploy target needs to know about a pipeline, and nothing secret. */
export interface DeployPlan {
  readonly pipeline: string;
  readonly source:
    | {
        readonly kind: 'file';
        /** As the project names it: relative to the project folder where it is inside it. */
        readonly path: string;
        readonly fileName: string;
        /** The file as written: `${VAR}`s unexpanded. */
        readonly text: string;
      }
    | { readonly kind: 'prebuilt'; readonly name: string };
  /** `--set`s, passed on to every worker's command line. */
  readonly sets: readonly string[];
  readonly variables: readonly DeployVariable[];
  /** The buffer component's name (`kafka`, `redis`). */
  readonly buffer: string;
  readonly brokers: DeployBrokers;
  readonly stages: readonly DeployStage[];
  /** Configs were checked against their schemas (false when a `${VAR}` was unset). */
  readonly configsChecked: boolean;
}

const ENV_REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Every `${VAR}` of a pipeline file's values (comments skipped, `$${` escapes honoured), as
 * the registry interpolates them; a variable is optional only if every reference has a default.
 */
export function pipelineVariables(text: string): DeployVariable[] {
  const found = new Map<string, boolean>();
  visit(parseDocument(text), {
    Scalar(_key, node: Scalar) {
      if (typeof node.value !== 'string') return;
      for (const match of node.value.matchAll(ENV_REFERENCE)) {
        if (match[0] === '$${') continue;
        const body = (match[1] ?? '').trim();
        const split = body.indexOf(':-');
        const name = (split < 0 ? body : body.slice(0, split)).trim();
        if (!ENV_NAME.test(name)) continue; // the pipeline check reports it
        found.set(name, (found.get(name) ?? true) && split >= 0);
      }
    },
  });
  return [...found].map(([name, optional]) => ({ name, optional }));
}

/** `buffer.with.brokers` as written in the file: a list, a comma list, or one `${VAR}`. */
function brokersOfFile(text: string): DeployBrokers {
  const doc = parseDocument(text);
  const node = doc.getIn(['buffer', 'with', 'brokers'], true);
  const whole = (value: string) => /^\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::-[^}]*)?\}$/.exec(value);
  if (isScalar(node) && typeof node.value === 'string') {
    const env = whole(node.value);
    if (env) return { kind: 'env', variable: env[1]! };
    if (!node.value.includes('${'))
      return { kind: 'list', brokers: node.value.split(',').map((b) => b.trim()) };
  } else if (isSeq(node)) {
    const items = node.items.map((i) => (isScalar(i) ? i.value : undefined));
    if (items.every((i): i is string => typeof i === 'string' && !i.includes('${')))
      return { kind: 'list', brokers: items };
  } else if (node === undefined || isMap(node)) {
    return { kind: 'unknown', why: 'the buffer has no `with.brokers` list' };
  }
  return {
    kind: 'unknown',
    why: '`buffer.with.brokers` mixes `${VAR}`s into its addresses; write a list of host:port, or one `${VAR}` holding them all',
  };
}

function brokersOfConfig(config: unknown): DeployBrokers {
  const brokers = (config as { brokers?: unknown } | undefined)?.brokers;
  return Array.isArray(brokers) && brokers.every((b) => typeof b === 'string')
    ? { kind: 'list', brokers }
    : { kind: 'unknown', why: "the buffer's config has no `brokers` list" };
}

/** `--replicas 3` (every consuming stage) and `--replicas stage=2` (one stage). */
export interface ReplicaRequest {
  readonly all?: number;
  readonly byStage: ReadonlyMap<string, number>;
}

export function parseReplicas(values: readonly string[]): ReplicaRequest {
  let all: number | undefined;
  const byStage = new Map<string, number>();
  for (const value of values) {
    const eq = value.lastIndexOf('=');
    const count = eq < 0 ? value : value.slice(eq + 1);
    if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > 10_000)
      throw new UsageError(
        `--replicas ${value}: expected a number of workers from 1 (N for every stage that reads a buffer, or stageId=N for one stage)`,
      );
    if (eq < 0) all = Number(count);
    else if (eq === 0) throw new UsageError(`--replicas ${value}: the stage id is missing`);
    else byStage.set(value.slice(0, eq), Number(count));
  }
  return { ...(all === undefined ? {} : { all }), byStage };
}

/** A stage as the target sees it, before replicas: from a loaded Pipeline or a checked file. */
interface StageShape {
  readonly id: string;
  readonly kind: 'input' | 'transform' | 'output';
  /** Parent references in input order: `stage`, or `stage:output` for a named output. */
  readonly parents: readonly string[];
}

/**
 * Topics, groups and partitions exactly as core's runtime derives them (runtime.ts topicOf and
 * groupOf, buffer-run.ts ensureTopic): stage options, else the stage id and 1 partition.
 */
function planStages(
  shapes: readonly StageShape[],
  options: (id: string) => StageOptions,
  replicas: ReplicaRequest,
): DeployStage[] {
  const ids = new Set(shapes.map((s) => s.id));
  for (const stage of replicas.byStage.keys()) {
    if (!ids.has(stage))
      throw new UsageError(
        `--replicas ${stage}=…: the pipeline has no stage "${stage}" (stages: ${[...ids].join(', ')})`,
      );
  }
  return shapes.map((shape) => {
    const inputs = shape.parents.map((ref) => {
      // A parent is `stage` or `stage:output` (a named output: the topic `<topic>.<output>`).
      const { stage: parent, output } = parseOutputRef(ref);
      return {
        stage: parent,
        topic: namedOutputTopic(options(parent).topic ?? parent, output),
        partitions: options(parent).partitions ?? 1,
      };
    });
    const maxReplicas =
      shape.kind === 'input' ? 1 : inputs.reduce((sum, i) => sum + i.partitions, 0);
    const asked =
      replicas.byStage.get(shape.id) ?? (shape.kind === 'input' ? undefined : replicas.all) ?? 1;
    if (asked > maxReplicas) {
      const why =
        shape.kind === 'input'
          ? 'it is an input stage, and every worker of an input stage reads its whole source (sources are not split across workers)'
          : `it reads ${inputs.map((i) => `topic "${i.topic}" (${i.partitions} partition${i.partitions === 1 ? '' : 's'})`).join(' and ')}`;
      throw new DeployReplicasError(shape.id, asked, maxReplicas, why);
    }
    return {
      id: shape.id,
      kind: shape.kind,
      group: options(shape.id).group ?? shape.id,
      inputs,
      offsetReset: options(shape.id).start === 'latest' ? 'latest' : 'earliest',
      maxReplicas,
      replicas: asked,
    };
  });
}

function refuseUnshared(pipeline: string, buffer: string | undefined): void {
  if (buffer === undefined || buffer === 'memory')
    throw new DeployBufferNotSharedError(pipeline, buffer);
}

/** The workers of a built Pipeline: its buffer (refused unless shared) and stages with replicas. */
export function pipelineWorkers(
  pipeline: Pipeline,
  replicas: ReplicaRequest,
): { buffer: string; stages: DeployStage[] } {
  const def = pipeline.definition;
  const buffer =
    def.buffer === undefined
      ? undefined
      : 'component' in def.buffer
        ? def.buffer.component.name
        : def.buffer.instance.kind;
  refuseUnshared(def.name, buffer);
  const stages = planStages(
    def.stages.map((s) => ({
      id: s.id,
      kind: s.kind,
      parents: parentRefsOf(def.edges, s.id),
    })),
    (id) => def.stageOptions.get(id) ?? {},
    replicas,
  );
  return { buffer: buffer!, stages };
}

/**
 * Reads a pipeline file (or builds a prebuilt pipeline) as `codefeedr run` would, and plans
 * its workers. A file's `${VAR}`s need not be set: when one is missing, the file is checked
 * from the manifests only (its configs are checked by the workers when they start).
 */
export async function deployPlan(
  cwd: string,
  target: string,
  env: Record<string, string | undefined>,
  sets: readonly string[],
  replicas: ReplicaRequest,
): Promise<DeployPlan> {
  if (!isPipelineFileArgument(cwd, target)) {
    const pipeline = await prebuiltPipeline(cwd, target, sets);
    const { buffer, stages } = pipelineWorkers(pipeline, replicas);
    const config = pipeline.definition.buffer;
    return {
      pipeline: pipeline.name,
      source: { kind: 'prebuilt', name: target },
      sets,
      variables: [],
      buffer,
      brokers: brokersOfConfig(config && 'config' in config ? config.config : undefined),
      stages,
      configsChecked: true,
    };
  }
  const absolute = isAbsolute(target) ? target : resolve(cwd, target);
  const shown = relative(cwd, absolute);
  const path = shown.startsWith('..') || isAbsolute(shown) ? absolute : shown;
  // The structural check first: a missing or broken file is reported as `run` reports it.
  const structural = checkPipelineFile(cwd, target, env, {
    overrides: sets,
    allowMissingEnv: true,
    configs: false,
  });
  const text = readFileSync(absolute, 'utf8');
  const variables = pipelineVariables(text);
  const complete = variables.every((v) => v.optional || env[v.name] !== undefined);
  let planned: { buffer: string; stages: DeployStage[] };
  if (complete) {
    const checked = checkPipelineFile(cwd, target, env, { overrides: sets });
    const pipeline = await loadPipeline(checked.spec, checked.catalog, checked.resolved, {
      baseDir: cwd,
    });
    planned = pipelineWorkers(pipeline, replicas);
  } else {
    // Stage options as the file's `options:` give them (topics, groups, partitions).
    const { resolved, spec } = structural;
    refuseUnshared(resolved.name, resolved.buffer?.component.name);
    planned = {
      buffer: resolved.buffer!.component.name,
      stages: planStages(
        resolved.stages.map((s) => ({
          id: s.id,
          kind: s.component.kind as StageShape['kind'],
          parents: s.from,
        })),
        (id) => spec.stages.find((s) => s.id === id)?.options ?? {},
        replicas,
      ),
    };
  }
  return {
    pipeline: structural.resolved.name,
    source: { kind: 'file', path, fileName: basename(absolute), text },
    sets,
    variables,
    ...planned,
    brokers: brokersOfFile(text),
    configsChecked: complete,
  };
}
