import { readFileSync } from 'node:fs';
import { registerSecret } from '@codefeedr/core';
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Node as YamlNode,
  type Pair,
  type Scalar,
} from 'yaml';
import { PipelineFileError, type PipelineProblem, type SourcePosition } from './errors.js';

/** A stage as a pipeline file declares it. */
export interface StageSpec {
  readonly id: string;
  /** Component reference: `<package>:<name>` or a short `<name>`. */
  readonly use: string;
  readonly with: Record<string, unknown>;
  /** Parent stage ids, in input order. */
  readonly from: readonly string[];
  /** Index in `stages`, for locating problems. */
  readonly index: number;
}

export interface BufferSpec {
  readonly use: string;
  readonly with: Record<string, unknown>;
}

/** A parsed pipeline file: values interpolated, overrides applied, able to locate any path. */
export interface PipelineFileSpec {
  readonly file: string;
  readonly name: string;
  readonly buffer: BufferSpec | undefined;
  readonly stages: readonly StageSpec[];
  /** Values that came from `${ENV}`: registered as secrets, never printed. */
  readonly secrets: readonly string[];
  /** file:line:column of the value at `path` (or of its nearest existing ancestor). */
  locate(path: readonly (string | number)[], preferKey?: boolean): SourcePosition;
}

export interface ParseOptions {
  /** Environment for `${VAR}`; default process.env. */
  env?: Record<string, string | undefined>;
  /** `stageId.key.path=value` overrides of stage config (`--set`); values parsed as YAML scalars. */
  overrides?: readonly string[];
}

const TOP_LEVEL_KEYS = new Set(['name', 'description', 'buffer', 'stages']);
const STAGE_KEYS = new Set(['id', 'use', 'with', 'from', 'description']);
const STAGE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ENV_REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;

/** Reads and parses a pipeline file; problems name it as `shownAs` (e.g. relative to the project). */
export function readPipelineFile(
  file: string,
  options: ParseOptions = {},
  shownAs = file,
): PipelineFileSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new PipelineFileError(shownAs, [
      {
        code: 'FILE_UNREADABLE',
        message: `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the path`,
      },
    ]);
  }
  return parsePipelineText(text, shownAs, options);
}

/**
 * Parses a pipeline file (YAML, or JSON, which is YAML too), interpolates `${VAR}` and
 * checks its shape. Every problem is collected, then thrown at once as a
 * PipelineFileError with file:line:column for each. Component references and configs
 * are checked later, against the plugin catalog (checkPipeline).
 */
export function parsePipelineText(
  text: string,
  file: string,
  options: ParseOptions = {},
): PipelineFileSpec {
  const env = options.env ?? process.env;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return { file, line, column: col };
  };
  const problems: PipelineProblem[] = [];
  for (const error of doc.errors) {
    problems.push({
      code: 'YAML_SYNTAX',
      message: `YAML syntax error: ${error.message.split('\n')[0]}`,
      position: at(error.pos[0]),
    });
  }
  if (problems.length > 0) throw new PipelineFileError(file, problems);

  const locate = (path: readonly (string | number)[], preferKey = false): SourcePosition => {
    for (let depth = path.length; depth >= 0; depth--) {
      const parentPath = path.slice(0, depth - 1);
      const key = path[depth - 1];
      if (depth === 0) return at((doc.contents as YamlNode | null)?.range?.[0]);
      const parent = parentPath.length === 0 ? doc.contents : doc.getIn(parentPath, true);
      if (isMap(parent)) {
        const pair = parent.items.find(
          (p: Pair) => (isScalar(p.key) ? p.key.value : p.key) === key,
        );
        if (pair) {
          const node = (preferKey || !pair.value ? pair.key : pair.value) as YamlNode | null;
          if (node?.range) return at(node.range[0]);
        }
      } else if (isSeq(parent) && typeof key === 'number') {
        const node = parent.items[key] as YamlNode | undefined;
        if (node?.range) return at(node.range[0]);
      }
    }
    return at(0);
  };

  // ${VAR} interpolation in string scalars; $${ escapes a literal ${.
  const secrets: string[] = [];
  visit(doc, {
    Scalar(_key, node: Scalar) {
      if (typeof node.value !== 'string' || !node.value.includes('$')) return;
      const source = node.value;
      node.value = source.replace(ENV_REFERENCE, (match: string, name: string | undefined) => {
        if (match === '$${') return '${';
        const variable = (name ?? '').trim();
        const value = env[variable];
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) {
          problems.push({
            code: 'ENV_REFERENCE_INVALID',
            message: `"\${${variable}}" is not a valid environment variable reference; use \${NAME} with letters, digits and _`,
            position: at(node.range?.[0]),
          });
          return match;
        }
        if (value === undefined) {
          problems.push({
            code: 'ENV_VAR_MISSING',
            message: `environment variable ${variable} is not set; export it (or remove the \${${variable}} reference)`,
            position: at(node.range?.[0]),
          });
          return match;
        }
        if (value !== '') {
          secrets.push(value);
          registerSecret(value);
        }
        return value;
      });
    },
  });

  const root = doc.contents;
  if (!isMap(root)) {
    problems.push({
      code: 'PIPELINE_SHAPE',
      message: 'a pipeline file must be a mapping with `name` and `stages`',
      position: at(0),
    });
    throw new PipelineFileError(file, problems);
  }
  const data = doc.toJS() as Record<string, unknown>;
  for (const key of Object.keys(data)) {
    if (!TOP_LEVEL_KEYS.has(key)) {
      problems.push({
        code: 'PIPELINE_SHAPE',
        message: `unknown top-level field "${key}" (expected ${[...TOP_LEVEL_KEYS].join(', ')})`,
        position: locate([key], true),
      });
    }
  }
  const name = data['name'];
  if (typeof name !== 'string' || name === '') {
    problems.push({
      code: 'PIPELINE_SHAPE',
      message: '`name` is required and must be a non-empty string',
      position: locate(['name']),
    });
  }

  let buffer: BufferSpec | undefined;
  const rawBuffer = data['buffer'];
  if (rawBuffer !== undefined) {
    if (typeof rawBuffer === 'string') {
      buffer = { use: rawBuffer, with: {} };
    } else if (typeof rawBuffer === 'object' && rawBuffer !== null && !Array.isArray(rawBuffer)) {
      const b = rawBuffer as Record<string, unknown>;
      const bufferWith = b['with'] ?? {};
      if (typeof b['use'] !== 'string') {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: '`buffer.use` must name a buffer component',
          position: locate(['buffer']),
        });
      } else if (
        typeof bufferWith !== 'object' ||
        bufferWith === null ||
        Array.isArray(bufferWith)
      ) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: '`buffer.with` must be a mapping',
          position: locate(['buffer', 'with']),
        });
      } else {
        buffer = { use: b['use'], with: bufferWith as Record<string, unknown> };
      }
    } else {
      problems.push({
        code: 'PIPELINE_SHAPE',
        message: '`buffer` must be a mapping with `use` and `with`',
        position: locate(['buffer']),
      });
    }
  }

  const stages: StageSpec[] = [];
  const rawStages = data['stages'];
  if (!Array.isArray(rawStages) || rawStages.length === 0) {
    problems.push({
      code: 'PIPELINE_SHAPE',
      message: '`stages` is required and must be a non-empty list',
      position: locate(['stages']),
    });
  } else {
    const ids = new Set<string>();
    rawStages.forEach((raw: unknown, index: number) => {
      const path = ['stages', index];
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: 'each stage must be a mapping with `id` and `use`',
          position: locate(path),
        });
        return;
      }
      const s = raw as Record<string, unknown>;
      let ok = true;
      for (const key of Object.keys(s)) {
        if (!STAGE_KEYS.has(key)) {
          problems.push({
            code: 'PIPELINE_SHAPE',
            message: `unknown stage field "${key}" (expected ${[...STAGE_KEYS].join(', ')}; component config goes under \`with:\`)`,
            position: locate([...path, key], true),
          });
        }
      }
      const id = s['id'];
      if (typeof id !== 'string' || !STAGE_ID.test(id)) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message:
            "stage `id` is required: letters, digits, `.`, `_` and `-` (it names the stage's buffer topic)",
          position: locate([...path, 'id']),
        });
        ok = false;
      } else if (ids.has(id)) {
        problems.push({
          code: 'STAGE_ID_DUPLICATE',
          message: `stage id "${id}" is used twice; ids must be unique`,
          position: locate([...path, 'id']),
        });
        ok = false;
      } else {
        ids.add(id);
      }
      if (typeof s['use'] !== 'string' || s['use'] === '') {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: 'stage `use` is required: the component to run, e.g. `printer`',
          position: locate([...path, 'use']),
        });
        ok = false;
      }
      const config = s['with'] ?? {};
      if (typeof config !== 'object' || config === null || Array.isArray(config)) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: 'stage `with` must be a mapping of config keys',
          position: locate([...path, 'with']),
        });
        ok = false;
      }
      const rawFrom = s['from'] ?? [];
      const from = typeof rawFrom === 'string' ? [rawFrom] : rawFrom;
      if (!Array.isArray(from) || from.some((f) => typeof f !== 'string')) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: 'stage `from` must be a stage id or a list of stage ids',
          position: locate([...path, 'from']),
        });
        ok = false;
      }
      if (ok) {
        stages.push({
          id: id as string,
          use: s['use'] as string,
          with: config as Record<string, unknown>,
          from: from as string[],
          index,
        });
      }
    });
  }

  for (const override of options.overrides ?? []) {
    const match = /^([^.=]+)\.([^=]+)=(.*)$/s.exec(override);
    const stage = match ? stages.find((s) => s.id === match[1]) : undefined;
    if (!match || !stage) {
      problems.push({
        code: 'OVERRIDE_INVALID',
        message: `--set ${override.split('=')[0]}: expected stageId.key=value with the id of a stage in this file`,
      });
      continue;
    }
    const keys = match[2]!.split('.');
    let target = stage.with as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys[keys.length - 1]!] = parseDocument(match[3]!).toJS();
  }

  if (problems.length > 0) throw new PipelineFileError(file, problems);
  return { file, name: name as string, buffer, stages, secrets, locate };
}
