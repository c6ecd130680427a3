import { isAbsolute, relative, resolve } from 'node:path';
import {
  checkPipeline,
  discoverPlugins,
  readPipelineFile,
  type PipelineFileSpec,
  type PluginCatalog,
  type ResolvedPipeline,
} from '@codefeedr/registry';

export interface CheckedPipelineFile {
  readonly catalog: PluginCatalog;
  readonly spec: PipelineFileSpec;
  readonly resolved: ResolvedPipeline;
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
  overrides: readonly string[] = [],
): CheckedPipelineFile {
  const absolute = isAbsolute(file) ? file : resolve(cwd, file);
  const shown = relative(cwd, absolute).startsWith('..') ? absolute : relative(cwd, absolute);
  const catalog = discoverPlugins(cwd);
  const spec = readPipelineFile(absolute, { env, overrides }, shown);
  return { catalog, spec, resolved: checkPipeline(spec, catalog) };
}
