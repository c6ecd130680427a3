import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import {
  Any,
  formatOutputRef,
  isCodefeedrError,
  parseOutputRef,
  validateGraph,
  type GraphEdge,
  type GraphStage,
} from '@codefeedr/core';
import { PipelineFileError, type PipelineProblem } from './errors.js';
import { coerceEnvValues } from './env-coercion.js';
import { describeSchemaErrors } from './manifest.js';
import { closestNames } from './name-suggestions.js';
import type { CatalogComponent, PluginCatalog } from './plugin-catalog.js';
import type { PipelineFileSpec } from './pipeline-file.js';

export interface ResolvedStage {
  readonly id: string;
  readonly component: CatalogComponent;
  readonly config: Record<string, unknown>;
  readonly from: readonly string[];
}

export interface ResolvedPipeline {
  readonly file: string;
  readonly name: string;
  readonly buffer:
    { readonly component: CatalogComponent; readonly config: Record<string, unknown> } | undefined;
  /** In file order. */
  readonly stages: readonly ResolvedStage[];
  readonly secrets: readonly string[];
}

// ajv with defaults off and coercion off: the check must not change the user's config.
const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false, verbose: true });
// Keyed by the schema itself, not the component's name: one name may serve two kinds (the
// ndjson-file input and output) with different schemas.
const validators = new WeakMap<object, ValidateFunction | null>();

function configValidator(component: CatalogComponent): ValidateFunction | undefined {
  const schema = component.configSchema;
  let validate = validators.get(schema);
  if (validate === undefined) {
    try {
      validate = ajv.compile(strictObjects(schema));
    } catch {
      validate = null; // An uncompilable schema is left to the component's own zod check at create().
    }
    validators.set(schema, validate);
  }
  return validate ?? undefined;
}

/**
 * A copy of a config schema where every object that lists its properties and says nothing
 * about others refuses them, as core's parseConfig does at create(): a plain `z.object`
 * yields such a schema, and a typo in a key must not pass silently. Objects that allow extra
 * keys say so (`additionalProperties: {}` from `.loose()`); allOf branches are left alone
 * (each would refuse the other's keys).
 */
export function strictObjects(schema: unknown): Record<string, unknown> {
  return strictNode(schema, 0) as Record<string, unknown>;
}

function strictNode(node: unknown, depth: number): unknown {
  if (typeof node !== 'object' || node === null || depth > 64) return node;
  if (Array.isArray(node)) return node.map((n) => strictNode(n, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (
      key === 'allOf' ||
      key === 'const' ||
      key === 'default' ||
      key === 'enum' ||
      key === 'examples'
    ) {
      out[key] = value;
    } else if (key === 'properties' || key === '$defs' || key === 'definitions') {
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [
          k,
          strictNode(v, depth + 1),
        ]),
      );
    } else {
      out[key] = strictNode(value, depth + 1);
    }
  }
  if (
    typeof out['properties'] === 'object' &&
    !('additionalProperties' in out) &&
    !('patternProperties' in out) &&
    !('unevaluatedProperties' in out)
  ) {
    out['additionalProperties'] = false;
  }
  return out;
}

function instancePathKeys(instancePath: string): (string | number)[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
}

/**
 * A component's config as the file gives it, with whole `${VAR}` values typed by the schema,
 * checked against the schema (unknown keys refused); problems are located at the key.
 */
function checkConfig(
  spec: PipelineFileSpec,
  component: CatalogComponent,
  raw: Record<string, unknown>,
  basePath: (string | number)[],
  owner: string,
  problems: PipelineProblem[] | undefined,
): Record<string, unknown> {
  const withPath = [...basePath, 'with'];
  const envPaths = spec.envValues
    .filter((e) => withPath.every((p, i) => e.path[i] === p))
    .map((e) => ({ ...e, path: e.path.slice(withPath.length) }));
  const config = coerceEnvValues(
    raw,
    component.configSchema,
    envPaths.map((e) => e.path),
  );
  const validate = problems === undefined ? undefined : configValidator(component);
  if (!validate || validate(config)) return config;
  for (const error of validate.errors ?? []) {
    if (error.keyword === 'if') continue;
    let [line] = describeSchemaErrors([error], 'with');
    const keys = instancePathKeys(error.instancePath);
    if (error.keyword === 'additionalProperties') {
      const key = String(error.params['additionalProperty']);
      const known = Object.keys(
        (schemaProperties(error.parentSchema) ?? {}) as Record<string, unknown>,
      );
      const [near] = closestNames(key, known, 1);
      line += near ? ` (did you mean "${near}"?)` : '';
      line += known.length > 0 ? `; known keys: ${known.join(', ')}` : '';
      keys.push(key);
    }
    const env = envPaths.find(
      (e) => e.path.length === keys.length && e.path.every((p, i) => keys[i] === p),
    );
    if (env) line += ` (the value of \${${env.variable}} is text that is not one)`;
    problems!.push({
      code: 'CONFIG_INVALID',
      message: `${owner} (${component.id}): ${line}`,
      position: spec.locate([...withPath, ...keys], error.keyword === 'additionalProperties'),
    });
  }
  return config;
}

function schemaProperties(schema: unknown): unknown {
  return typeof schema === 'object' && schema !== null
    ? (schema as Record<string, unknown>)['properties']
    : undefined;
}

function problemFrom(error: unknown, position: PipelineProblem['position']): PipelineProblem {
  if (isCodefeedrError(error)) return { code: error.code, message: error.message, position };
  throw error;
}

/**
 * Checks a parsed pipeline file against the installed components before anything runs:
 * every `use` resolves, every config matches its component's JSON Schema, every `from`
 * names a stage, input counts match, every edge's message types match (input by input,
 * in order) and there is no cycle. Reads manifests only; no plugin code is imported.
 * All problems are thrown at once as a PipelineFileError with file:line:column each.
 */
export interface CheckOptions {
  /**
   * Check each config against its schema (default true). `codefeedr graph` turns it off: it
   * draws the DAG from manifests and needs neither the secrets nor valid values.
   */
  configs?: boolean;
}

export function checkPipeline(
  spec: PipelineFileSpec,
  catalog: PluginCatalog,
  options: CheckOptions = {},
): ResolvedPipeline {
  const problems: PipelineProblem[] = [];
  const configProblems = options.configs === false ? undefined : problems;
  const resolved = new Map<string, ResolvedStage>();

  let buffer: ResolvedPipeline['buffer'];
  if (spec.buffer) {
    try {
      const component = catalog.resolve(spec.buffer.use, ['buffer']);
      if (component.kind !== 'buffer') {
        problems.push({
          code: 'COMPONENT_KIND_MISMATCH',
          message: `buffer: "${spec.buffer.use}" is a ${component.kind} component, not a buffer`,
          position: spec.locate(['buffer', 'use']),
        });
      } else {
        const config = checkConfig(
          spec,
          component,
          spec.buffer.with,
          ['buffer'],
          'buffer',
          configProblems,
        );
        buffer = { component, config };
      }
    } catch (error) {
      problems.push(problemFrom(error, spec.locate(['buffer', 'use'])));
    }
  }

  for (const stage of spec.stages) {
    const base = ['stages', stage.index];
    try {
      const component = catalog.resolve(
        stage.use,
        stage.from.length === 0 ? ['input'] : ['transform', 'output'],
      );
      if (
        component.kind !== 'input' &&
        component.kind !== 'transform' &&
        component.kind !== 'output'
      ) {
        problems.push({
          code: 'COMPONENT_KIND_MISMATCH',
          message: `stage "${stage.id}": "${component.id}" is a ${component.kind} component; a stage needs an input, transform or output`,
          position: spec.locate([...base, 'use']),
        });
        continue;
      }
      const config = checkConfig(
        spec,
        component,
        stage.with,
        base,
        `stage "${stage.id}"`,
        configProblems,
      );
      resolved.set(stage.id, { id: stage.id, component, config, from: stage.from });
    } catch (error) {
      problems.push(problemFrom(error, spec.locate([...base, 'use'])));
    }
  }

  checkGraph(spec, resolved, problems);

  if (problems.length > 0) {
    // In file order, as a reader goes through them (stable: same place keeps check order).
    const at = (p: PipelineProblem) => [p.position?.line ?? 0, p.position?.column ?? 0] as const;
    problems.sort((a, b) => at(a)[0] - at(b)[0] || at(a)[1] - at(b)[1]);
    throw new PipelineFileError(spec.file, problems);
  }
  return {
    file: spec.file,
    name: spec.name,
    buffer,
    stages: spec.stages.map((s) => resolved.get(s.id)!),
    secrets: spec.secrets,
  };
}

/**
 * The graph rules are core's (`validateGraph`, the same the TypeScript builder runs); this
 * only feeds them the file's stages as manifests describe them, and puts each problem at the
 * `from` entry or stage id it is about. One mistake is one problem: a stage whose `use` did
 * not resolve (reported on its own) stands in as a stage that takes its `from`s and passes
 * anything on, so its children are neither short of parents nor unreachable because of it;
 * stages downstream of a cycle or of a broken edge are not reported as unreachable either.
 */
function checkGraph(
  spec: PipelineFileSpec,
  resolved: ReadonlyMap<string, ResolvedStage>,
  problems: PipelineProblem[],
): void {
  const stages: GraphStage[] = [];
  const edges: GraphEdge[] = [];
  for (const stage of spec.stages) {
    const component = resolved.get(stage.id)?.component;
    stages.push(
      component === undefined
        ? {
            id: stage.id,
            kind: stage.from.length === 0 ? 'input' : 'transform',
            inputTypeIds: stage.from.map(() => Any.id),
            outputTypeId: null,
          }
        : {
            id: stage.id,
            kind: component.kind as GraphStage['kind'],
            inputTypeIds: component.kind === 'input' ? [] : (component.inputTypes ?? []),
            outputTypeId: component.outputType ?? null,
            outputTypeIds: component.outputs,
          },
    );
    for (const ref of stage.from) {
      const { stage: from, output } = parseOutputRef(ref);
      edges.push(output === undefined ? { from, to: stage.id } : { from, output, to: stage.id });
    }
  }
  const found = validateGraph({ name: spec.name, stages, edges });
  const downstream = downstreamOfMistakes(found, edges);
  const ids = spec.stages.map((s) => s.id);
  for (const problem of found) {
    if (problem.code === 'DANGLING_STAGE' && downstream.has(String(problem.details['stageId'])))
      continue;
    let message = problem.message;
    // The nearest ids only: listing every stage in each of a thousand errors prints megabytes.
    if (problem.code === 'UNKNOWN_STAGE') {
      const near = closestNames(String(problem.details['stageId']), ids, 3);
      if (near.length > 0) message += ` Did you mean ${near.map((n) => `"${n}"`).join(' or ')}?`;
    }
    problems.push({
      code: problem.code,
      message,
      position: locateProblem(spec, problem.details),
    });
  }
}

/**
 * Stages reached from a cycle, or from a stage whose parent edge is itself reported (an unknown
 * stage, an output used as a parent): unreachable because of that mistake, not a second one.
 */
function downstreamOfMistakes(
  found: readonly { code: string; details: Readonly<Record<string, unknown>> }[],
  edges: readonly GraphEdge[],
): Set<string> {
  const stack: string[] = [];
  for (const problem of found) {
    if (problem.code === 'CYCLE') stack.push(...(problem.details['path'] as string[]));
    else if (problem.code === 'UNKNOWN_STAGE' || problem.code === 'EDGE_FROM_OUTPUT')
      stack.push(String(problem.details['to']));
  }
  const children = new Map<string, string[]>();
  for (const e of edges) children.set(e.from, [...(children.get(e.from) ?? []), e.to]);
  const reached = new Set<string>();
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  return reached;
}

/** The place in the file a graph problem is about: an edge's `from` entry, else a stage's id. */
function locateProblem(
  spec: PipelineFileSpec,
  details: Readonly<Record<string, unknown>>,
): PipelineProblem['position'] {
  const stageAt = (id: unknown, last = false) => {
    const matches = spec.stages.filter((s) => s.id === id);
    return last ? matches[matches.length - 1] : matches[0];
  };
  const fromEntry = (to: unknown, from: unknown, index?: unknown) => {
    const stage = stageAt(to);
    if (stage === undefined) return undefined;
    const output = details['output'] as string | undefined;
    const ref = formatOutputRef({ stage: from as string, output });
    const i = typeof index === 'number' ? index : stage.from.lastIndexOf(ref);
    const base = ['stages', stage.index, 'from'];
    return spec.locate(stage.from.length === 1 || i < 0 ? base : [...base, i]);
  };
  const path = details['path'];
  if (Array.isArray(path) && path.length > 1) return fromEntry(path[1], path[0]);
  if (details['from'] !== undefined && details['to'] !== undefined) {
    const at = fromEntry(details['to'], details['from'], details['inputIndex']);
    if (at !== undefined) return at;
  }
  const stage = stageAt(details['stageId'], true);
  if (stage === undefined) return spec.locate(['stages']);
  if (details['declared'] !== undefined && stage.from.length > 0)
    return spec.locate(['stages', stage.index, 'from']);
  return spec.locate(['stages', stage.index, 'id'], true);
}
