import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { CodefeedrError } from '@codefeedr/core';
import { PipelineFileError, type PipelineProblem } from './errors.js';
import { describeSchemaErrors } from './manifest.js';
import type { CatalogComponent, PluginCatalog } from './plugin-catalog.js';
import type { PipelineFileSpec, StageSpec } from './pipeline-file.js';

/** The type id core's `Any` message type has: accepts every type. */
const ANY_TYPE = 'any@1';

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
const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
const validators = new Map<string, ValidateFunction>();

function configValidator(component: CatalogComponent): ValidateFunction | undefined {
  let validate = validators.get(component.id);
  if (!validate) {
    try {
      validate = ajv.compile(component.configSchema);
    } catch {
      return undefined; // An uncompilable schema is left to the component's own zod check at create().
    }
    validators.set(component.id, validate);
  }
  return validate;
}

function instancePathKeys(instancePath: string): (string | number)[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
}

function checkConfig(
  spec: PipelineFileSpec,
  component: CatalogComponent,
  config: Record<string, unknown>,
  basePath: (string | number)[],
  owner: string,
  problems: PipelineProblem[],
): void {
  const validate = configValidator(component);
  if (!validate || validate(config)) return;
  for (const error of validate.errors ?? []) {
    if (error.keyword === 'if') continue;
    const [line] = describeSchemaErrors([error], 'with');
    const keys = instancePathKeys(error.instancePath);
    if (error.keyword === 'additionalProperties')
      keys.push(String(error.params['additionalProperty']));
    problems.push({
      code: 'CONFIG_INVALID',
      message: `${owner} (${component.id}): ${line}`,
      position: spec.locate(
        [...basePath, 'with', ...keys],
        error.keyword === 'additionalProperties',
      ),
    });
  }
}

function problemFrom(error: unknown, position: PipelineProblem['position']): PipelineProblem {
  if (error instanceof CodefeedrError)
    return { code: error.code, message: error.message, position };
  throw error;
}

/**
 * Checks a parsed pipeline file against the installed components before anything runs:
 * every `use` resolves, every config matches its component's JSON Schema, every `from`
 * names a stage, input counts match, every edge's message types match (input by input,
 * in order) and there is no cycle. Reads manifests only; no plugin code is imported.
 * All problems are thrown at once as a PipelineFileError with file:line:column each.
 */
export function checkPipeline(spec: PipelineFileSpec, catalog: PluginCatalog): ResolvedPipeline {
  const problems: PipelineProblem[] = [];
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
        checkConfig(spec, component, spec.buffer.with, ['buffer'], 'buffer', problems);
        buffer = { component, config: spec.buffer.with };
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
      checkConfig(spec, component, stage.with, base, `stage "${stage.id}"`, problems);
      resolved.set(stage.id, { id: stage.id, component, config: stage.with, from: stage.from });
    } catch (error) {
      problems.push(problemFrom(error, spec.locate([...base, 'use'])));
    }
  }

  const byId = new Map(spec.stages.map((s) => [s.id, s]));
  for (const stage of spec.stages) {
    checkEdges(spec, stage, byId, resolved, problems);
  }
  checkCycles(spec, problems);

  if (problems.length > 0) throw new PipelineFileError(spec.file, problems);
  return {
    file: spec.file,
    name: spec.name,
    buffer,
    stages: spec.stages.map((s) => resolved.get(s.id)!),
    secrets: spec.secrets,
  };
}

function checkEdges(
  spec: PipelineFileSpec,
  stage: StageSpec,
  byId: ReadonlyMap<string, StageSpec>,
  resolved: ReadonlyMap<string, ResolvedStage>,
  problems: PipelineProblem[],
): void {
  const base = ['stages', stage.index];
  const fromPath = (i: number): (string | number)[] =>
    stage.from.length === 1 ? [...base, 'from'] : [...base, 'from', i];
  stage.from.forEach((parentId, i) => {
    if (parentId === stage.id) {
      problems.push({
        code: 'EDGE_INVALID',
        message: `stage "${stage.id}" cannot read from itself`,
        position: spec.locate(fromPath(i)),
      });
    } else if (!byId.has(parentId)) {
      problems.push({
        code: 'STAGE_NOT_FOUND',
        message: `stage "${stage.id}" reads from "${parentId}", which is not a stage in this file (stages: ${[...byId.keys()].join(', ')})`,
        position: spec.locate(fromPath(i)),
      });
    }
  });
  const self = resolved.get(stage.id);
  if (!self) return;
  const inputTypes = self.component.inputTypes ?? [];
  if (self.component.kind === 'input') {
    if (stage.from.length > 0) {
      problems.push({
        code: 'EDGE_INVALID',
        message: `stage "${stage.id}" is an input (${self.component.id}); it reads no other stage, remove its \`from\``,
        position: spec.locate([...base, 'from']),
      });
    }
    return;
  }
  if (stage.from.length !== inputTypes.length) {
    problems.push({
      code: 'EDGE_ARITY',
      message: `stage "${stage.id}" (${self.component.id}) takes ${inputTypes.length} input${inputTypes.length === 1 ? '' : 's'} (${inputTypes.join(', ')}) but \`from\` lists ${stage.from.length}`,
      position: spec.locate(
        stage.from.length > 0 ? [...base, 'from'] : [...base, 'id'],
        stage.from.length === 0,
      ),
    });
    return;
  }
  stage.from.forEach((parentId, i) => {
    const parent = resolved.get(parentId);
    if (!parent) return;
    const expected = inputTypes[i]!;
    if (parent.component.kind === 'output') {
      problems.push({
        code: 'EDGE_INVALID',
        message: `stage "${stage.id}" reads from "${parentId}", an output stage, which emits nothing`,
        position: spec.locate(fromPath(i)),
      });
      return;
    }
    const actual = parent.component.outputType;
    if (expected !== ANY_TYPE && actual !== expected) {
      problems.push({
        code: 'EDGE_TYPE_MISMATCH',
        message: `stage "${stage.id}" input ${i + 1} expects ${expected}, but "${parentId}" (${parent.component.id}) emits ${actual ?? 'nothing'}`,
        position: spec.locate(fromPath(i)),
      });
    }
  });
}

function checkCycles(spec: PipelineFileSpec, problems: PipelineProblem[]): void {
  const indegree = new Map(spec.stages.map((s) => [s.id, 0]));
  const children = new Map<string, string[]>();
  for (const s of spec.stages) {
    for (const parent of new Set(s.from)) {
      if (!indegree.has(parent) || parent === s.id) continue;
      indegree.set(s.id, (indegree.get(s.id) ?? 0) + 1);
      children.set(parent, [...(children.get(parent) ?? []), s.id]);
    }
  }
  const ready = [...indegree].filter(([, d]) => d === 0).map(([id]) => id);
  let visited = 0;
  while (ready.length > 0) {
    const id = ready.pop()!;
    visited++;
    for (const child of children.get(id) ?? []) {
      const d = indegree.get(child)! - 1;
      indegree.set(child, d);
      if (d === 0) ready.push(child);
    }
  }
  if (visited < spec.stages.length) {
    const inCycle = [...indegree].filter(([, d]) => d > 0).map(([id]) => id);
    const first = spec.stages.find((s) => s.id === inCycle[0])!;
    problems.push({
      code: 'PIPELINE_CYCLE',
      message: `stages ${inCycle.join(', ')} form a cycle through \`from\`; a pipeline must be acyclic`,
      position: spec.locate(['stages', first.index, 'from']),
    });
  }
}
