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
import { stageOptionsSchema, type StageOptionsSpec } from './stage-options.js';

/** A stage as a pipeline file declares it. */
export interface StageSpec {
  readonly id: string;
  /** Component reference: `<package>:<name>` or a short `<name>`. */
  readonly use: string;
  readonly with: Record<string, unknown>;
  /** Parent stage ids, in input order. */
  readonly from: readonly string[];
  /** `options:` — how the stage runs on the buffer (partitions, guarantee, ...); empty when absent. */
  readonly options: StageOptionsSpec;
  /** Index in `stages`, for locating problems. */
  readonly index: number;
}

export interface BufferSpec {
  readonly use: string;
  readonly with: Record<string, unknown>;
}

/** `deadLetter:` of a pipeline file: where records a stage could not process are kept. */
export interface DeadLetterSpec {
  /** `file`: NDJSON files under `dir`; `topic`: `<stage>.dlq` topics of the buffer; `auto` (default): files on the memory buffer, topics otherwise. */
  readonly to: 'auto' | 'file' | 'topic';
  /** Folder of dead-letter files, relative to the project folder. */
  readonly dir: string | undefined;
  /** Extra attempts for a record whose user code throws, before it is dead-lettered. */
  readonly retries: number | undefined;
}

/** A whole scalar that was one `${VAR}`: its type is decided by the field's schema later. */
export interface EnvValue {
  readonly path: readonly (string | number)[];
  readonly variable: string;
}

/** A parsed pipeline file: values interpolated, overrides applied, able to locate any path. */
export interface PipelineFileSpec {
  readonly file: string;
  readonly name: string;
  readonly buffer: BufferSpec | undefined;
  readonly deadLetter: DeadLetterSpec | undefined;
  readonly stages: readonly StageSpec[];
  /** Values that came from `${ENV}`: registered as secrets, never printed. */
  readonly secrets: readonly string[];
  /** Scalars that were exactly one `${VAR}` (strings until a schema says number or boolean). */
  readonly envValues: readonly EnvValue[];
  /** file:line:column of the value at `path` (or of its nearest existing ancestor). */
  locate(path: readonly (string | number)[], preferKey?: boolean): SourcePosition;
}

export interface ParseOptions {
  /** Environment for `${VAR}`; default process.env. */
  env?: Record<string, string | undefined>;
  /** `stageId.key.path=value` overrides of stage config (`--set`); values parsed as YAML scalars. */
  overrides?: readonly string[];
  /**
   * Leave a `${VAR}` that is not set as it is instead of reporting it (`codefeedr graph`
   * draws a pipeline without its secrets).
   */
  allowMissingEnv?: boolean;
}

const TOP_LEVEL_KEYS = new Set(['name', 'description', 'buffer', 'deadLetter', 'stages']);
const DEAD_LETTER_KEYS = new Set(['to', 'dir', 'retries']);
const STAGE_KEYS = new Set(['id', 'use', 'with', 'from', 'options', 'description']);
const STAGE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// `${NAME}`, `${NAME:-default}` (default when unset or empty), and `$${` for a literal `${`.
const ENV_REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Keys that would reach Object.prototype through a plain object; never config keys. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

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
      { code: 'FILE_UNREADABLE', message: unreadableReason(error as NodeJS.ErrnoException) },
    ]);
  }
  return parsePipelineText(text, shownAs, options);
}

/** Why a pipeline file cannot be read, in words, with what to do. */
function unreadableReason(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return 'the file does not exist; check the path (relative paths start at the project folder, see --cwd)';
    case 'EISDIR':
      return 'this is a folder, not a pipeline file; name the YAML or JSON file inside it';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied reading the file; check its permissions';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder; check the path';
    case 'ENAMETOOLONG':
      return 'the path is too long for the file system; use a shorter path';
    default:
      return `cannot read the file (${error.code ?? String(error)}); check the path`;
  }
}

/**
 * A YAML error caused by an unquoted `${VAR}` inside a flow collection (`{ to: ${N} }`: YAML
 * reads the `{` as a nested mapping): one problem per such reference instead of the dozen
 * syntax errors that cascade from it.
 */
function unquotedEnvReferences(text: string, file: string): PipelineProblem[] {
  const problems: PipelineProblem[] = [];
  text.split('\n').forEach((line, index) => {
    let quote: string | undefined;
    let flowDepth = 0;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i]!;
      if (quote !== undefined) {
        if (ch === quote) quote = undefined;
        continue;
      }
      if (ch === '#' && (i === 0 || /\s/.test(line[i - 1]!))) break;
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '{' || ch === '[') flowDepth++;
      else if (ch === '}' || ch === ']') flowDepth = Math.max(0, flowDepth - 1);
      else if (ch === '$' && line[i + 1] === '{' && line[i - 1] !== '$' && flowDepth > 0) {
        const end = line.indexOf('}', i);
        const reference = end > i ? line.slice(i, end + 1) : '${…}';
        problems.push({
          code: 'ENV_REFERENCE_UNQUOTED',
          message: `${reference} inside a flow mapping or list (\`{ … }\`, \`[ … ]\`) must be quoted: write "${reference}" (YAML reads an unquoted \`{\` as the start of a mapping). Its value is still typed by the field's schema.`,
          position: { file, line: index + 1, column: i + 1 },
        });
        i = end > i ? end : i;
      }
    }
  });
  return problems;
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
  if (doc.errors.length > 0) {
    const unquoted = unquotedEnvReferences(text, file);
    if (unquoted.length > 0) throw new PipelineFileError(file, unquoted);
  }
  for (const error of doc.errors) {
    problems.push({
      code: 'YAML_SYNTAX',
      message: `YAML syntax error: ${error.message.split('\n')[0]}`,
      position: at(error.pos[0]),
    });
  }
  if (problems.length > 0) throw new PipelineFileError(file, problems);

  // Config paths set with --set: problems about them point at the --set, not the file.
  const overridden: { path: readonly (string | number)[]; key: string }[] = [];
  const locate = (path: readonly (string | number)[], preferKey = false): SourcePosition => {
    const override = overridden.find(
      (o) => o.path.length <= path.length && o.path.every((p, i) => path[i] === p),
    );
    if (override) return { file, line: 0, column: 0, override: override.key };
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
  const wholeEnv = new Map<Scalar, string>();
  visit(doc, {
    Scalar(_key, node: Scalar) {
      if (typeof node.value !== 'string' || !node.value.includes('$')) return;
      const source = node.value;
      let only: string | undefined;
      const whole = /^\$\{([^}]*)\}$/.exec(source);
      node.value = source.replace(ENV_REFERENCE, (match: string, inner: string | undefined) => {
        if (match === '$${') return '${';
        const body = (inner ?? '').trim();
        const split = body.indexOf(':-');
        const variable = (split < 0 ? body : body.slice(0, split)).trim();
        const fallback = split < 0 ? undefined : body.slice(split + 2);
        if (!ENV_NAME.test(variable)) {
          problems.push({
            code: 'ENV_REFERENCE_INVALID',
            message: `"\${${body}}" is not a valid environment variable reference; use \${NAME} or \${NAME:-default}, NAME with letters, digits and _`,
            position: at(node.range?.[0]),
          });
          return match;
        }
        const value = env[variable];
        if (value === undefined || (value === '' && fallback !== undefined)) {
          if (fallback !== undefined) {
            if (whole) only = variable;
            return fallback; // Written in the file: not a secret.
          }
          if (options.allowMissingEnv) return match;
          problems.push({
            code: 'ENV_VAR_MISSING',
            message: `environment variable ${variable} is not set; export it, give a default (\${${variable}:-value}), or remove the reference`,
            position: at(node.range?.[0]),
          });
          return match;
        }
        if (value !== '') {
          secrets.push(value);
          registerSecret(value);
        }
        if (whole) only = variable;
        return value;
      });
      if (only !== undefined) wholeEnv.set(node, only);
    },
  });
  const envValues: EnvValue[] = [];
  if (wholeEnv.size > 0) {
    const walk = (node: unknown, path: (string | number)[]): void => {
      if (isScalar(node)) {
        const variable = wholeEnv.get(node as Scalar);
        if (variable !== undefined) envValues.push({ path, variable });
      } else if (isMap(node)) {
        for (const pair of node.items) {
          const key = isScalar(pair.key) ? pair.key.value : pair.key;
          if (typeof key === 'string' || typeof key === 'number') walk(pair.value, [...path, key]);
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, [...path, i]));
      }
    };
    walk(doc.contents, []);
  }

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

  let deadLetter: DeadLetterSpec | undefined;
  const rawDeadLetter = data['deadLetter'];
  if (rawDeadLetter !== undefined) {
    if (
      typeof rawDeadLetter !== 'object' ||
      rawDeadLetter === null ||
      Array.isArray(rawDeadLetter)
    ) {
      problems.push({
        code: 'PIPELINE_SHAPE',
        message:
          '`deadLetter` must be a mapping: `{ to: file, dir: dead-letters }` or `{ to: topic }`',
        position: locate(['deadLetter']),
      });
    } else {
      const d = rawDeadLetter as Record<string, unknown>;
      let ok = true;
      for (const key of Object.keys(d)) {
        if (!DEAD_LETTER_KEYS.has(key)) {
          problems.push({
            code: 'PIPELINE_SHAPE',
            message: `unknown deadLetter field "${key}" (expected ${[...DEAD_LETTER_KEYS].join(', ')})`,
            position: locate(['deadLetter', key], true),
          });
          ok = false;
        }
      }
      const to = d['to'] ?? 'auto';
      if (to !== 'auto' && to !== 'file' && to !== 'topic') {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message:
            '`deadLetter.to` must be `file` (NDJSON files under `dir`), `topic` (`<stage>.dlq` topics of the buffer) or `auto`',
          position: locate(['deadLetter', 'to']),
        });
        ok = false;
      }
      const dir = d['dir'];
      if (dir !== undefined && (typeof dir !== 'string' || dir === '')) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: '`deadLetter.dir` must be a folder path',
          position: locate(['deadLetter', 'dir']),
        });
        ok = false;
      } else if (dir !== undefined && to === 'topic') {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: '`deadLetter.dir` is for `to: file`; dead letters on topics need no folder',
          position: locate(['deadLetter', 'dir'], true),
        });
        ok = false;
      }
      const retries = d['retries'];
      if (retries !== undefined && !(Number.isInteger(retries) && (retries as number) >= 0)) {
        problems.push({
          code: 'PIPELINE_SHAPE',
          message: '`deadLetter.retries` must be a whole number >= 0',
          position: locate(['deadLetter', 'retries']),
        });
        ok = false;
      }
      if (ok) {
        deadLetter = {
          to: to as DeadLetterSpec['to'],
          dir: dir as string | undefined,
          retries: retries as number | undefined,
        };
      }
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
          message:
            'stage `from` must be a stage id (`<stage>:<output>` for one of its named outputs) or a list of them',
          position: locate([...path, 'from']),
        });
        ok = false;
      }
      const parsedOptions = stageOptionsSchema.safeParse(s['options'] ?? {});
      if (!parsedOptions.success) {
        for (const issue of parsedOptions.error.issues) {
          const at = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
          const unknown = issue.code === 'unrecognized_keys' ? issue.keys : [];
          for (const key of unknown.length > 0 ? unknown : [undefined]) {
            const where = key === undefined ? at : [...at, key];
            problems.push({
              code: 'STAGE_OPTIONS_INVALID',
              message:
                key === undefined
                  ? `stage options${where.length > 0 ? ` ${where.join('.')}` : ''}: ${issue.message}`
                  : `unknown stage option "${key}" (expected ${Object.keys(stageOptionsSchema.shape).join(', ')}; component config goes under \`with:\`)`,
              position: locate([...path, 'options', ...where], key !== undefined),
            });
          }
        }
        ok = false;
      }
      if (ok) {
        stages.push({
          id: id as string,
          use: s['use'] as string,
          with: config as Record<string, unknown>,
          from: from as string[],
          options: parsedOptions.data as StageOptionsSpec,
          index,
        });
      }
    });
  }

  // Longest id first, so `--set in.v2.to=1` finds stage `in.v2` rather than a stage `in`.
  const byLength = [...stages].sort((a, b) => b.id.length - a.id.length);
  for (const override of options.overrides ?? []) {
    const eq = override.indexOf('=');
    const target = eq < 0 ? override : override.slice(0, eq);
    const shown = { file, line: 0, column: 0, override: target };
    const stage = byLength.find(
      (s) => target.startsWith(`${s.id}.`) && target.length > s.id.length + 1,
    );
    if (eq < 0 || stage === undefined) {
      problems.push({
        code: 'OVERRIDE_INVALID',
        message:
          eq < 0
            ? 'expected stageId.key=value'
            : `no stage of this file has an id that "${target}" starts with; expected stageId.key=value (stages: ${stages
                .slice(0, 10)
                .map((s) => s.id)
                .join(', ')}${stages.length > 10 ? ', …' : ''})`,
        position: shown,
      });
      continue;
    }
    const keys = target.slice(stage.id.length + 1).split('.');
    const bad = keys.find((key) => key === '' || FORBIDDEN_KEYS.has(key));
    if (bad !== undefined) {
      problems.push({
        code: 'OVERRIDE_INVALID',
        message:
          bad === ''
            ? 'a config key is empty; write stageId.key.subkey=value'
            : `"${bad}" cannot be a config key (it would change every object, not this stage's config)`,
        position: shown,
      });
      continue;
    }
    let targetObject = stage.with as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) {
      const next = Object.hasOwn(targetObject, key) ? targetObject[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) targetObject[key] = {};
      targetObject = targetObject[key] as Record<string, unknown>;
    }
    targetObject[keys[keys.length - 1]!] = parseDocument(override.slice(eq + 1)).toJS();
    const path = ['stages', stage.index, 'with', ...keys];
    overridden.push({ path, key: target });
    // A value set on the command line is no longer the file's `${VAR}`.
    for (let i = envValues.length - 1; i >= 0; i--) {
      const env = envValues[i]!;
      if (path.every((p, j) => env.path[j] === p)) envValues.splice(i, 1);
    }
  }

  if (problems.length > 0) throw new PipelineFileError(file, problems);
  return { file, name: name as string, buffer, deadLetter, stages, secrets, envValues, locate };
}
