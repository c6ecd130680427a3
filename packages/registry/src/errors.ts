import { CodefeedrError } from '@codefeedr/core';

/** Where in a pipeline file a problem is: 1-based line and column. */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /**
   * Set when the value came from the command line rather than the file: the `--set` key
   * (`stageId.key`, never its value, which may be a secret). Line and column are then 0.
   */
  readonly override?: string;
}

/** One problem found while checking a pipeline file; all are reported together. */
export interface PipelineProblem {
  /** Stable code, e.g. `YAML_SYNTAX`, `COMPONENT_NOT_FOUND`, `CONFIG_INVALID`, `TYPE_MISMATCH`. */
  readonly code: string;
  readonly message: string;
  readonly position?: SourcePosition | undefined;
}

export function formatPosition(position: SourcePosition | undefined): string {
  if (!position) return '';
  if (position.override !== undefined) return `--set ${position.override}`;
  return `${position.file}:${position.line}:${position.column}`;
}

export function formatProblem(problem: PipelineProblem): string {
  const where = formatPosition(problem.position);
  return `${where ? `${where}: ` : ''}${problem.message} [${problem.code}]`;
}

/** A plugin's `codefeedr` manifest does not match the manifest schema. */
export class ManifestInvalidError extends CodefeedrError {
  readonly packageName: string;
  readonly problems: readonly string[];
  constructor(packageName: string, problems: readonly string[]) {
    super(
      'MANIFEST_INVALID',
      `Plugin "${packageName}" has an invalid manifest (the "codefeedr" field of its package.json):\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        `\nAsk the plugin's maintainers for a fixed release, or regenerate the manifest with \`codefeedr manifest\` if it is your plugin.`,
      { packageName, problems },
    );
    this.packageName = packageName;
    this.problems = problems;
  }
}

/** A plugin's `@codefeedr/core` peer range excludes the installed core. */
export class PluginCoreIncompatibleError extends CodefeedrError {
  constructor(packageName: string, range: string, coreVersion: string) {
    super(
      'PLUGIN_CORE_INCOMPATIBLE',
      `Plugin "${packageName}" needs @codefeedr/core ${range}, but ${coreVersion} is installed. ` +
        `Install a version of the plugin built for core ${coreVersion}, or install a core that satisfies ${range}.`,
      { packageName, range, coreVersion },
    );
  }
}

/** No discovered plugin (nor the built-ins) offers a component of that name. */
export class ComponentNotFoundError extends CodefeedrError {
  constructor(ref: string, suggestions: readonly string[], note?: string) {
    super(
      'COMPONENT_NOT_FOUND',
      `No component named "${ref}" is installed.` +
        (suggestions.length > 0
          ? ` Did you mean ${suggestions.map((s) => `"${s}"`).join(' or ')}?`
          : '') +
        ` Run \`codefeedr stages\` to list the installed components, or \`codefeedr plugins search <term>\` to find a plugin that has it.` +
        (note ? ` ${note}` : ''),
      { ref, suggestions },
    );
  }
}

/** A short component name that more than one package offers. */
export class ComponentAmbiguousError extends CodefeedrError {
  constructor(ref: string, candidates: readonly string[]) {
    super(
      'COMPONENT_AMBIGUOUS',
      `Component name "${ref}" is offered by more than one package: ${candidates.join(', ')}. ` +
        `Use the full name (one of ${candidates.map((c) => `"${c}"`).join(', ')}).`,
      { ref, candidates },
    );
  }
}

/** A manifest names a module export the plugin's module does not have. */
export class ComponentExportMissingError extends CodefeedrError {
  constructor(componentId: string, exportName: string, entry: string) {
    super(
      'COMPONENT_EXPORT_MISSING',
      `Component "${componentId}" says it is exported as "${exportName}", but ${entry} has no such export (or it is not a component). ` +
        `The plugin's manifest is out of sync with its code: regenerate it with \`codefeedr manifest\` and republish.`,
      { componentId, exportName, entry },
    );
  }
}

/** A plugin's module could not be located or imported. */
export class PluginLoadError extends CodefeedrError {
  constructor(packageName: string, detail: string, cause?: unknown) {
    super(
      'PLUGIN_LOAD_FAILED',
      `Plugin "${packageName}" could not be loaded: ${detail}. Reinstall it (\`codefeedr plugins add ${packageName}\`), or build it first if it is a workspace package.`,
      { packageName },
      { cause },
    );
  }
}

const SHOWN_PROBLEMS = 50;

/** A pipeline file has problems; each is listed with file:line:column (the first 50 in the message). */
export class PipelineFileError extends CodefeedrError {
  readonly problems: readonly PipelineProblem[];
  constructor(file: string, problems: readonly PipelineProblem[]) {
    // A generated file with a thousand mistakes should not print a thousand lines: the first
    // ones say what is wrong; `details.problems` (--json) keeps every one.
    const shown = problems.slice(0, SHOWN_PROBLEMS);
    super(
      'PIPELINE_INVALID',
      `Pipeline file ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        shown.map((p) => `  ${formatProblem(p)}`).join('\n') +
        (problems.length > shown.length
          ? `\n  … and ${problems.length - shown.length} more (\`codefeedr validate ${file} --json\` lists every one)`
          : '') +
        `\nFix them and run \`codefeedr validate ${file}\` again.`,
      { file, problems },
    );
    this.problems = problems;
  }
}

/** The npm registry search failed. */
export class RegistrySearchError extends CodefeedrError {
  constructor(registry: string, detail: string) {
    super(
      'REGISTRY_SEARCH_FAILED',
      `Searching ${registry} for plugins failed: ${detail}. Check the registry address (\`npm config get registry\`) and that it is reachable.`,
      { registry },
    );
  }
}

/** A package.json the project relies on is not valid JSON (or not an object). */
export class PackageJsonInvalidError extends CodefeedrError {
  constructor(file: string, role: 'project' | 'workspace' | 'dependency', detail: string) {
    super(
      'PACKAGE_JSON_INVALID',
      `The ${role === 'project' ? "project's" : `${role} package's`} package.json (${file}) cannot be read: ${detail}. ` +
        (role === 'dependency'
          ? 'Reinstall the dependencies (`npm install`).'
          : 'Fix the file (it must be one JSON object); plugins are found through it.'),
      { file, role },
    );
  }
}
