import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { CodefeedrError, isCodefeedrError, type Pipeline } from '@codefeedr/core';
import {
  checkPipeline,
  discoverPlugins,
  loadPipeline,
  readPipelineFile,
  type CheckOptions,
  type PipelineFileSpec,
  type PluginCatalog,
  type ResolvedPipeline,
} from '@codefeedr/registry';
import { parseDocument } from 'yaml';
import { UsageError } from './cli-errors.js';

export interface CheckedPipelineFile {
  readonly catalog: PluginCatalog;
  readonly spec: PipelineFileSpec;
  readonly resolved: ResolvedPipeline;
}

export interface PipelineFileOptions extends CheckOptions {
  overrides?: readonly string[];
  /** Leave unset `${VAR}`s as they are (graph). */
  allowMissingEnv?: boolean;
}

/**
 * Reads and checks a pipeline file against the project's installed plugins (manifests
 * only, nothing imported). Problems are thrown as one PipelineFileError; the file is
 * named relative to the project so messages stay short.
 */
export function checkPipelineFile(
  cwd: string,
  file: string,
  env: Record<string, string | undefined>,
  options: PipelineFileOptions = {},
): CheckedPipelineFile {
  const absolute = isAbsolute(file) ? file : resolve(cwd, file);
  const shown = relative(cwd, absolute).startsWith('..') ? absolute : relative(cwd, absolute);
  const catalog = discoverPlugins(cwd);
  const spec = readPipelineFile(
    absolute,
    {
      env,
      overrides: options.overrides ?? [],
      ...(options.allowMissingEnv ? { allowMissingEnv: true } : {}),
    },
    shown,
  );
  return { catalog, spec, resolved: checkPipeline(spec, catalog, options) };
}

/** A file argument: it exists, or it is named like a pipeline file (so a missing one says so). */
export function isPipelineFileArgument(cwd: string, target: string): boolean {
  return (
    existsSync(resolve(cwd, target)) ||
    /\.(ya?ml|json)$/i.test(target) ||
    target.startsWith('.') ||
    target.startsWith('/')
  );
}

/** A prebuilt pipeline as a `pipeline` component exports it. */
interface PipelineComponent {
  create(config?: unknown): unknown;
}

function isPipeline(value: unknown): value is Pipeline {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Pipeline).run === 'function' &&
    typeof (value as Pipeline).describe === 'function'
  );
}

/** Keys that would reach Object.prototype through a plain object; never config keys. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** `key=value` pairs (values parsed as YAML scalars) into a config object with dotted paths. */
export function configFromSets(sets: readonly string[]): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set ${set.split('=')[0]}: expected key=value`);
    const keys = set.slice(0, eq).split('.');
    const bad = keys.find((k) => k === '' || FORBIDDEN_KEYS.has(k));
    if (bad !== undefined) {
      throw new UsageError(
        `--set ${set.slice(0, eq)}: ${bad === '' ? 'a key is empty' : `"${bad}" cannot be a config key (it would change every object, not this config)`}`,
      );
    }
    let target = config;
    for (const key of keys.slice(0, -1)) {
      const next = Object.hasOwn(target, key) ? target[key] : undefined;
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys[keys.length - 1]!] = parseDocument(set.slice(eq + 1)).toJS();
  }
  return config;
}

/** No file and no prebuilt pipeline by that name: say both, and which file was probably meant. */
export class PipelineNotFoundError extends CodefeedrError {
  constructor(target: string, cwd: string, cause: CodefeedrError) {
    const near = ['.yaml', '.yml', '.json']
      .map((ext) => `${target}${ext}`)
      .find((name) => existsSync(join(cwd, name)));
    super(
      'PIPELINE_NOT_FOUND',
      `"${target}" is neither a file in ${cwd} nor a prebuilt pipeline of an installed plugin.` +
        (near ? ` Did you mean the file ${near} (\`codefeedr run ${near}\`)?` : '') +
        ` Give a pipeline file (YAML or JSON) or a prebuilt pipeline name (\`codefeedr stages --kind pipeline\` lists them). ${cause.code === 'COMPONENT_NOT_FOUND' ? '' : cause.message}`.trimEnd(),
      { target },
    );
  }
}

/** Builds a prebuilt pipeline (a `pipeline` component of an installed plugin) with `--set` config. */
export async function prebuiltPipeline(
  cwd: string,
  name: string,
  sets: readonly string[],
): Promise<Pipeline> {
  const catalog = discoverPlugins(cwd);
  let component;
  try {
    component = catalog.resolve(name, ['pipeline']);
  } catch (error) {
    if (isCodefeedrError(error) && error.code === 'COMPONENT_NOT_FOUND')
      throw new PipelineNotFoundError(name, cwd, error);
    throw error;
  }
  if (component.kind !== 'pipeline') {
    throw new UsageError(
      `"${name}" is a ${component.kind} component and there is no file "${name}"; give a pipeline file or a prebuilt pipeline name`,
    );
  }
  const value = (await catalog.load(component)) as PipelineComponent;
  let built = await value.create(configFromSets(sets));
  if (!isPipeline(built) && typeof (built as { build?: unknown })?.build === 'function') {
    built = (built as { build(): unknown }).build();
  }
  if (!isPipeline(built)) {
    throw new CodefeedrError(
      'PIPELINE_COMPONENT_INVALID',
      `Prebuilt pipeline ${component.id} did not create a Pipeline; report this to its maintainers.`,
    );
  }
  return built;
}

export type PipelineTarget =
  | { kind: 'file'; checked: CheckedPipelineFile; pipeline: Pipeline }
  | { kind: 'prebuilt'; pipeline: Pipeline };

/** A pipeline file or a prebuilt pipeline name, built (plugins imported, configs checked by zod). */
export async function openPipeline(
  cwd: string,
  target: string,
  env: Record<string, string | undefined>,
  sets: readonly string[],
): Promise<PipelineTarget> {
  if (!isPipelineFileArgument(cwd, target)) {
    return { kind: 'prebuilt', pipeline: await prebuiltPipeline(cwd, target, sets) };
  }
  const checked = checkPipelineFile(cwd, target, env, { overrides: sets });
  const pipeline = await loadPipeline(checked.spec, checked.catalog, checked.resolved, {
    baseDir: cwd,
  });
  return { kind: 'file', checked, pipeline };
}

/** Whether `dir` is a folder (for `--checkpoint-dir` and friends: a file there is a usage error). */
export function checkFolderOption(option: string, cwd: string, dir: string): string {
  const absolute = resolve(cwd, dir);
  let stat;
  try {
    stat = statSync(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return absolute; // created on first use
    if (code === 'ENOTDIR')
      throw new UsageError(`${option} ${dir}: a part of ${absolute} is a file, not a folder`);
    if (code === 'ENAMETOOLONG') throw new UsageError(`${option} ${dir}: the path is too long`);
    throw new UsageError(`${option} ${dir}: cannot use ${absolute} (${code ?? String(error)})`);
  }
  if (!stat.isDirectory())
    throw new UsageError(`${option} ${dir}: ${absolute} is a file; give a folder`);
  return absolute;
}
