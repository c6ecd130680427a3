import { join, resolve } from 'node:path';
import {
  ConfigError,
  isCodefeedrError,
  PipelineBuilder,
  PipelineValidationError,
  type AnyStage,
  type BufferComponent,
  type Pipeline,
} from '@codefeedr/core';
import { PipelineFileError, type PipelineProblem } from './errors.js';
import type { PipelineFileSpec } from './pipeline-file.js';
import { checkPipeline, type ResolvedPipeline } from './pipeline-check.js';
import type { PluginCatalog } from './plugin-catalog.js';

interface Creatable {
  create(id: string, config?: unknown): AnyStage;
}

/**
 * Turns a checked pipeline file into a core Pipeline: imports only the plugins whose
 * components it uses, creates each stage (zod re-checks its config), wires the edges in
 * input order and lets core's own validation run. Problems come back as one
 * PipelineFileError, located in the file where possible.
 */
export interface LoadOptions {
  /**
   * The project folder: a relative `deadLetter.dir` starts there, and so does the default
   * (`.codefeedr/dead-letters/<pipeline>`). Default: the process's working directory.
   */
  baseDir?: string;
}

export async function loadPipeline(
  spec: PipelineFileSpec,
  catalog: PluginCatalog,
  resolved: ResolvedPipeline = checkPipeline(spec, catalog),
  options: LoadOptions = {},
): Promise<Pipeline> {
  const problems: PipelineProblem[] = [];
  const index = new Map(spec.stages.map((s) => [s.id, s.index]));
  const builder = new PipelineBuilder(resolved.name);

  const settle = async <T>(
    path: (string | number)[],
    work: () => Promise<T> | T,
  ): Promise<T | undefined> => {
    try {
      return await work();
    } catch (error) {
      if (!isCodefeedrError(error)) throw error;
      if (error instanceof ConfigError || error.code === 'CONFIG_INVALID') {
        // Each problem at its key: `to: must be number` points at the `to:` value (or its --set).
        const owner = String(error.details['stageId']);
        const list = (error.details['problems'] as readonly string[] | undefined) ?? [
          error.message,
        ];
        for (const problem of list) {
          const split = problem.indexOf(': ');
          const where = split < 0 ? '(config)' : problem.slice(0, split);
          const keys =
            where === '(config)'
              ? []
              : where.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
          problems.push({
            code: error.code,
            message: `${owner.startsWith('buffer ') ? owner : `stage "${owner}"`} config: ${problem}`,
            position: spec.locate([...path, ...keys], /unknown key/.test(problem)),
          });
        }
        return undefined;
      }
      problems.push({ code: error.code, message: error.message, position: spec.locate(path) });
      return undefined;
    }
  };

  if (spec.deadLetter || options.baseDir !== undefined) {
    const { to = 'auto', dir, retries } = spec.deadLetter ?? {};
    const base = options.baseDir ?? process.cwd();
    builder.setDeadLetter({
      destination: to,
      ...(dir !== undefined || options.baseDir !== undefined
        ? { dir: resolve(base, dir ?? join('.codefeedr', 'dead-letters', resolved.name)) }
        : {}),
      ...(retries === undefined ? {} : { retries }),
    });
  }
  if (resolved.buffer) {
    const { component, config } = resolved.buffer;
    const buffer = await settle(['buffer', 'use'], () => catalog.load(component));
    if (buffer) builder.setBuffer(buffer as BufferComponent, config);
  }
  const created = new Map<string, AnyStage>();
  for (const stage of resolved.stages) {
    const path = ['stages', index.get(stage.id)!];
    const component = (await settle([...path, 'use'], () => catalog.load(stage.component))) as
      Creatable | undefined;
    if (!component) continue;
    const instance = await settle([...path, 'with'], () =>
      component.create(stage.id, stage.config),
    );
    if (instance) {
      created.set(stage.id, instance);
      builder.add(instance);
      const options = spec.stages.find((s) => s.id === stage.id)?.options;
      if (options !== undefined && Object.keys(options).length > 0)
        builder.setStageOptions(stage.id, options);
    }
  }
  if (problems.length > 0) throw new PipelineFileError(spec.file, problems);
  for (const stage of resolved.stages) {
    for (const parent of stage.from) builder.edge(parent, stage.id);
  }
  try {
    return builder.build();
  } catch (error) {
    if (!(error instanceof PipelineValidationError)) throw error;
    throw new PipelineFileError(
      spec.file,
      error.problems.map((p) => {
        const stageId = (p.details['stageId'] ?? p.details['to']) as string | undefined;
        const at = stageId !== undefined ? index.get(stageId) : undefined;
        return {
          code: p.code,
          message: p.message,
          position: at === undefined ? undefined : spec.locate(['stages', at, 'id']),
        };
      }),
    );
  }
}
