// Namespace import: fs.globSync is Node >= 22; a named import would fail to link on older
// Node before the CLI could say which version it needs.
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as core from '@codefeedr/core';
import type { CodefeedrError } from '@codefeedr/core';
import semver from 'semver';
import {
  ComponentAmbiguousError,
  ComponentExportMissingError,
  ComponentNotFoundError,
  ManifestInvalidError,
  PluginCoreIncompatibleError,
  PluginLoadError,
} from './errors.js';
import { validateManifest } from './manifest.js';
import { closestNames } from './name-suggestions.js';
import { isComponent, manifestFromModule } from './manifest-from-module.js';
import {
  PLUGIN_KEYWORD,
  type ComponentKind,
  type ManifestComponent,
  type PluginManifest,
} from './manifest-schema.js';
import {
  findInstalledPackage,
  packageEntry,
  readPackageJson,
  readPackageJsonFor,
  type PackageJson,
} from './package-json.js';

export const CORE_PACKAGE = '@codefeedr/core';

export type PluginSource = 'builtin' | 'project' | 'dependency' | 'workspace';

export interface DiscoveredPlugin {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** Folder of the package (undefined for the built-ins, which live in core). */
  readonly dir: string | undefined;
  readonly source: PluginSource;
  /** The `@codefeedr/core` peer range the plugin declares, if any. */
  readonly coreRange: string | undefined;
  /** Present when the manifest is valid (even if the core range is incompatible). */
  readonly manifest: PluginManifest | undefined;
  /** Why the plugin cannot be used: a malformed manifest or an incompatible core. */
  readonly problem: CodefeedrError | undefined;
}

export interface CatalogComponent extends ManifestComponent {
  /** `<package>:<name>` */
  readonly id: string;
  readonly packageName: string;
  readonly plugin: DiscoveredPlugin;
}

export interface DiscoverOptions {
  /** Installed core version to check peer ranges against; default: the one resolved from the project. */
  coreVersion?: string;
  /** Include core's built-in components (sequence, printer, ...). Default true. */
  builtins?: boolean;
}

/** Core's own components, usable without any plugin. Importing core is free: it is loaded already. */
function builtinPlugin(coreVersion: string | undefined): DiscoveredPlugin {
  return {
    name: CORE_PACKAGE,
    version: coreVersion ?? 'builtin',
    description: 'Built-in components of @codefeedr/core',
    dir: undefined,
    source: 'builtin',
    coreRange: undefined,
    manifest: manifestFromModule(core as unknown as Record<string, unknown>),
    problem: undefined,
  };
}

function workspaceDirs(projectDir: string, pkg: PackageJson): string[] {
  const patterns = Array.isArray(pkg.workspaces)
    ? pkg.workspaces
    : (pkg.workspaces?.packages ?? []);
  const dirs: string[] = [];
  for (const pattern of patterns) {
    for (const match of fs.globSync(join(pattern, 'package.json'), { cwd: projectDir })) {
      if (!match.includes('node_modules')) dirs.push(resolve(projectDir, dirname(match)));
    }
  }
  return dirs;
}

/**
 * Why a plugin package (its package.json) cannot be used with `coreVersion`: a malformed
 * manifest or an excluded core; undefined when it is fine. Used before installing, too.
 */
export function pluginPackageProblem(
  pkg: PackageJson,
  coreVersion: string | undefined,
): CodefeedrError | undefined {
  return inspectPlugin('', pkg, 'dependency', coreVersion).problem;
}

function inspectPlugin(
  dir: string,
  pkg: PackageJson,
  source: PluginSource,
  coreVersion: string | undefined,
): DiscoveredPlugin {
  const name = pkg.name ?? dir;
  const coreRange = pkg.peerDependencies?.[CORE_PACKAGE] ?? pkg.dependencies?.[CORE_PACKAGE];
  let manifest: PluginManifest | undefined;
  let problem: CodefeedrError | undefined;
  try {
    manifest = validateManifest(pkg);
  } catch (error) {
    if (!(error instanceof ManifestInvalidError)) throw error;
    problem = error;
  }
  if (
    !problem &&
    coreRange !== undefined &&
    coreVersion !== undefined &&
    semver.validRange(coreRange) !== null &&
    // Prereleases (snapshot releases) count: `^0.1.0-next.1` should accept `0.1.0-next.2`.
    !semver.satisfies(coreVersion, coreRange, { includePrerelease: true })
  ) {
    problem = new PluginCoreIncompatibleError(name, coreRange, coreVersion);
  }
  return {
    name,
    version: pkg.version ?? '0.0.0',
    description: pkg.description ?? '',
    dir,
    source,
    coreRange,
    manifest,
    problem,
  };
}

function isPluginCandidate(pkg: PackageJson): boolean {
  return (
    (Array.isArray(pkg.keywords) && pkg.keywords.includes(PLUGIN_KEYWORD)) ||
    pkg['codefeedr'] !== undefined
  );
}

/**
 * Finds the plugins a project can use: the project itself, its dependencies and
 * devDependencies (resolved through node_modules as Node would) and its workspace
 * packages. Reads package.json manifests only; no plugin code is imported here.
 */
export function discoverPlugins(projectDir: string, options: DiscoverOptions = {}): PluginCatalog {
  const root = resolve(projectDir);
  let coreVersion = options.coreVersion;
  if (coreVersion === undefined) {
    const corePkg = findInstalledPackage(CORE_PACKAGE, root);
    coreVersion = corePkg ? readPackageJson(corePkg).version : undefined;
  }
  const plugins: DiscoveredPlugin[] = [];
  if (options.builtins !== false) plugins.push(builtinPlugin(coreVersion));
  const seen = new Set<string>([CORE_PACKAGE]);
  const add = (dir: string, pkg: PackageJson, source: PluginSource): void => {
    if (!pkg.name || seen.has(pkg.name) || !isPluginCandidate(pkg)) return;
    seen.add(pkg.name);
    plugins.push(inspectPlugin(dir, pkg, source, coreVersion));
  };

  // A folder without package.json still gets the built-ins; a malformed one is an error,
  // not an empty project (its plugins would vanish without a word).
  const project = readPackageJsonFor(join(root, 'package.json'), 'project') ?? {};
  add(root, project, 'project');
  for (const dir of workspaceDirs(root, project)) {
    const pkg = readPackageJsonFor(join(dir, 'package.json'), 'workspace');
    if (pkg) add(dir, pkg, 'workspace');
  }
  for (const name of Object.keys({ ...project.dependencies, ...project.devDependencies })) {
    const file = findInstalledPackage(name, root);
    const pkg = file ? readPackageJsonFor(file, 'dependency') : undefined;
    if (file && pkg) add(dirname(file), pkg, 'dependency');
  }
  return new PluginCatalog(plugins, coreVersion);
}

class UnsettledImportError extends Error {}

/**
 * `import(entry)`, except that a module whose top-level await can never settle rejects
 * instead of leaving Node to exit with code 13 and a bare warning: when the event loop runs
 * out of work while the import is pending ('beforeExit'), nothing can settle it any more.
 */
async function importSettling(entry: string): Promise<Record<string, unknown>> {
  let stuck!: (error: Error) => void;
  const guard = new Promise<never>((_, reject) => (stuck = reject));
  const onBeforeExit = () => stuck(new UnsettledImportError(entry));
  process.on('beforeExit', onBeforeExit);
  try {
    return await Promise.race([
      import(pathToFileURL(entry).href) as Promise<Record<string, unknown>>,
      guard,
    ]);
  } finally {
    process.off('beforeExit', onBeforeExit);
  }
}

/** The discovered plugins and their components, namespaced `<package>:<name>`. */
export class PluginCatalog {
  readonly plugins: readonly DiscoveredPlugin[];
  readonly coreVersion: string | undefined;
  readonly #modules = new Map<string, Promise<Record<string, unknown>>>();

  constructor(plugins: readonly DiscoveredPlugin[], coreVersion: string | undefined) {
    this.plugins = plugins;
    this.coreVersion = coreVersion;
  }

  /** Every component of a plugin with a readable manifest (incompatible ones included). */
  allComponents(): CatalogComponent[] {
    return this.plugins.flatMap((plugin) =>
      (plugin.manifest?.components ?? []).map((c) => ({
        ...c,
        id: `${plugin.name}:${c.name}`,
        packageName: plugin.name,
        plugin,
      })),
    );
  }

  /** Components that can be used: their plugin has no problem. */
  components(): CatalogComponent[] {
    return this.allComponents().filter((c) => c.plugin.problem === undefined);
  }

  plugin(name: string): DiscoveredPlugin | undefined {
    return this.plugins.find((p) => p.name === name);
  }

  /**
   * Resolves `<package>:<name>` or an unambiguous short `<name>`, preferring `kinds`
   * when the name has several. Throws
   * ComponentNotFoundError, ComponentAmbiguousError, or the plugin's own problem
   * (ManifestInvalidError, PluginCoreIncompatibleError).
   */
  resolve(ref: string, kinds?: readonly ComponentKind[]): CatalogComponent {
    const separator = ref.lastIndexOf(':');
    let all = this.allComponents();
    // A name shared by several kinds of one package (ndjson-file input and output) is
    // settled by the role the caller needs.
    if (kinds) {
      const named = (list: CatalogComponent[]) =>
        list.filter((c) => (separator > 0 ? c.id === ref : c.name === ref));
      const fitting = all.filter((c) => kinds.includes(c.kind));
      if (named(fitting).length > 0 || named(all).length > 1) all = fitting;
    }
    let matches: CatalogComponent[];
    if (separator > 0) {
      const packageName = ref.slice(0, separator);
      const plugin = this.plugin(packageName);
      if (plugin?.problem && !plugin.manifest) throw plugin.problem;
      matches = all.filter((c) => c.id === ref);
    } else {
      matches = all.filter((c) => c.name === ref);
    }
    if (matches.length > 1)
      throw new ComponentAmbiguousError(
        ref,
        matches.map((c) => c.id),
      );
    const match = matches[0];
    if (match) {
      if (match.plugin.problem) throw match.plugin.problem;
      return match;
    }
    const suggestions = closestNames(
      ref,
      all.flatMap((c) => [c.name, c.id]),
    );
    const broken = this.plugins.filter((p) => p.problem && !p.manifest);
    if (broken.length === 0) throw new ComponentNotFoundError(ref, suggestions);
    // A broken plugin may be the one meant to provide it: say so rather than hide it.
    throw new ComponentNotFoundError(
      ref,
      suggestions,
      `These installed plugins have invalid manifests and were skipped: ${broken.map((p) => p.name).join(', ')} (see \`codefeedr plugins list\`).`,
    );
  }

  /** Imports the component's plugin module (once) and returns the component object. */
  async load(component: CatalogComponent): Promise<unknown> {
    const plugin = component.plugin;
    if (plugin.problem) throw plugin.problem;
    let moduleExports: Record<string, unknown>;
    let entry = CORE_PACKAGE;
    if (plugin.dir === undefined) {
      moduleExports = core as unknown as Record<string, unknown>;
    } else {
      const pkg = readPackageJson(join(plugin.dir, 'package.json'));
      entry = packageEntry(plugin.dir, pkg);
      let pending = this.#modules.get(plugin.name);
      if (!pending) {
        pending = importSettling(entry);
        this.#modules.set(plugin.name, pending);
      }
      try {
        moduleExports = await pending;
      } catch (error) {
        const detail =
          error instanceof UnsettledImportError
            ? `importing ${entry} never finished: a top-level \`await\` in the module waits for something that can never happen (nothing else is left to run). Ask its maintainers to settle it or move the work into the component's create()`
            : (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND'
              ? `${entry} is missing`
              : `importing ${entry} threw ${String((error as Error).message ?? error)}`;
        throw new PluginLoadError(plugin.name, detail, error);
      }
    }
    const value = moduleExports[component.export];
    if (!isComponent(value))
      throw new ComponentExportMissingError(component.id, component.export, entry);
    return value;
  }
}
