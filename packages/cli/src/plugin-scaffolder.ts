import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { isValidPackageName, pluginPackageName, type PackageJson } from '@codefeedr/registry';
import {
  PackageNameInvalidError,
  ScaffoldTargetExistsError,
  ScaffoldTargetUnwritableError,
} from './cli-errors.js';

export interface ScaffoldOptions {
  /** `acme-hello` or `@acme/hello` (full package names are accepted as they are). */
  name: string;
  /** Where the command runs. */
  cwd: string;
  /** Target folder; default plugins/<name> at a monorepo root with plugins/*, else ./<name>. */
  dir?: string | undefined;
  /** Folder to copy from (the template shipped with the CLI). */
  templateDir: string;
}

export interface ScaffoldResult {
  packageName: string;
  dir: string;
  /** `workspace`: a new package of the monorepo at cwd; `standalone`: its own project. */
  mode: 'workspace' | 'standalone';
  files: string[];
  changeset: string;
  /**
   * @codefeedr/* packages the new plugin takes from local tarballs or folders (the project the
   * command ran in installed them that way: they are not on a registry yet), by name.
   */
  localPackages: Record<string, string>;
}

/** Never copied: build output, installs, local state. */
const SKIPPED = new Set(['node_modules', 'dist', '.tmp', 'coverage', 'CHANGELOG.md', '.turbo']);

function isMonorepoWithPlugins(dir: string): boolean {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
    const patterns = Array.isArray(pkg.workspaces)
      ? pkg.workspaces
      : (pkg.workspaces?.packages ?? []);
    return patterns.some((p) => p.replace(/\/$/, '') === 'plugins/*');
  } catch {
    return false;
  }
}

/**
 * Where the project at `cwd` got its @codefeedr/* packages when not from a registry: `file:`
 * specs (tarballs made by `npm pack`, or folders), made absolute. A tarball's siblings in its
 * folder count too (`codefeedr-testkit-0.1.0.tgz` beside `codefeedr-core-0.1.0.tgz`), so a
 * plugin can take @codefeedr/testkit from where the CLI came from.
 */
function localCodefeedrPackages(cwd: string, wanted: readonly string[]): Map<string, string> {
  const specs = new Map<string, string>();
  let pkg: PackageJson;
  try {
    pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as PackageJson;
  } catch {
    return specs;
  }
  const folders = new Set<string>();
  for (const [name, spec] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
    if (!name.startsWith('@codefeedr/') || !spec.startsWith('file:')) continue;
    const target = resolve(cwd, spec.slice('file:'.length));
    specs.set(name, `file:${target}`);
    if (target.endsWith('.tgz')) folders.add(dirname(target));
  }
  for (const name of wanted) {
    if (specs.has(name)) continue;
    const stem = `${name.slice(1).replace('/', '-')}-`;
    for (const folder of folders) {
      const tarball = readdirSync(folder)
        .filter((f) => f.startsWith(stem) && f.endsWith('.tgz') && /^\d/.test(f.slice(stem.length)))
        .sort()
        .pop();
      if (tarball) {
        specs.set(name, `file:${join(folder, tarball)}`);
        break;
      }
    }
  }
  return specs;
}

/** Versions of the monorepo's own @codefeedr/* packages, so a new workspace plugin pins them. */
function workspaceVersions(root: string): Map<string, string> {
  const versions = new Map<string, string>();
  const dir = join(root, 'packages');
  if (!existsSync(dir)) return versions;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
    if (pkg.name && pkg.version) versions.set(pkg.name, pkg.version);
  }
  return versions;
}

/**
 * mkdir -p, one level at a time: `mkdirSync(dir, { recursive: true })` spins forever under
 * /proc (ENOENT on a parent that exists), and its errors name no role. Refusals become one
 * ScaffoldTargetUnwritableError naming the folder and why.
 */
function createFolder(dir: string): void {
  const missing: string[] = [];
  let current = dir;
  for (;;) {
    let stat;
    try {
      stat = statSync(current);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new ScaffoldTargetUnwritableError(dir, code ?? String(error));
      missing.unshift(current);
      const parent = dirname(current);
      if (parent === current) break;
      current = parent;
      continue;
    }
    if (!stat.isDirectory()) throw new ScaffoldTargetUnwritableError(dir, 'ENOTDIR', current);
    break;
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new ScaffoldTargetUnwritableError(dir, code ?? String(error));
    }
  }
}

function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path, base) : [relative(base, path)];
  });
}

/**
 * `codefeedr new plugin`: copies the plugin template, renames the package
 * (acme-hello → codefeedr-plugin-acme-hello; @acme/hello → @acme/codefeedr-plugin-hello)
 * and writes its first changeset. At a monorepo root it becomes a workspace under
 * plugins/ pinned to the workspace's @codefeedr/* versions; anywhere else a standalone
 * project depending on the published versions the template ships with.
 */
export function scaffoldPlugin(options: ScaffoldOptions): ScaffoldResult {
  if (!isValidPackageName(options.name)) throw new PackageNameInvalidError(options.name);
  const packageName = pluginPackageName(options.name);
  const slug = basename(options.name.replace(/^@[^/]+\//, ''));
  const mode =
    options.dir === undefined && isMonorepoWithPlugins(options.cwd) ? 'workspace' : 'standalone';
  const dir = resolve(
    options.cwd,
    options.dir ?? (mode === 'workspace' ? join('plugins', slug) : slug),
  );
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new ScaffoldTargetExistsError(dir);

  createFolder(dir);
  cpSync(options.templateDir, dir, {
    recursive: true,
    filter: (source) => !SKIPPED.has(basename(source)) && !source.endsWith('.tsbuildinfo'),
  });
  // npm never packs a file named .gitignore, so the template carries it as `gitignore`.
  if (existsSync(join(dir, 'gitignore')))
    renameSync(join(dir, 'gitignore'), join(dir, '.gitignore'));

  const pkgFile = join(dir, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson;
  const { private: _private, ...rest } = pkg;
  const renamed: PackageJson = { ...rest, name: packageName, version: '0.1.0' };
  if (mode === 'workspace') {
    const versions = workspaceVersions(options.cwd);
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies'] as const) {
      const deps = renamed[field];
      if (!deps) continue;
      for (const dep of Object.keys(deps)) {
        const version = versions.get(dep);
        if (version) deps[dep] = `^${version}`;
      }
    }
    // The monorepo's root scripts release every package; a workspace needs no release script.
    const scripts = renamed['scripts'] as Record<string, string> | undefined;
    if (scripts) delete scripts['release'];
  }
  const localPackages: Record<string, string> = {};
  if (mode === 'standalone') {
    // Until @codefeedr/* are on a registry, `npm install` in the new plugin must find them
    // where this project found them, or its first step fails with a 404.
    const wanted = (['dependencies', 'devDependencies'] as const).flatMap((field) =>
      Object.keys(renamed[field] ?? {}).filter((d) => d.startsWith('@codefeedr/')),
    );
    const local = localCodefeedrPackages(options.cwd, wanted);
    for (const field of ['dependencies', 'devDependencies'] as const) {
      const deps = renamed[field];
      if (!deps) continue;
      for (const dep of Object.keys(deps)) {
        const spec = local.get(dep);
        if (spec) deps[dep] = localPackages[dep] = spec;
      }
    }
  }
  writeFileSync(pkgFile, `${JSON.stringify(renamed, null, 2)}\n`);

  const readme = join(dir, 'README.md');
  if (existsSync(readme)) {
    writeFileSync(
      readme,
      readFileSync(readme, 'utf8').replaceAll('codefeedr-plugin-template', packageName),
    );
  }

  const changesetDir =
    mode === 'workspace' ? join(options.cwd, '.changeset') : join(dir, '.changeset');
  mkdirSync(changesetDir, { recursive: true });
  if (mode === 'standalone' && !existsSync(join(changesetDir, 'config.json'))) {
    writeFileSync(
      join(changesetDir, 'config.json'),
      `${JSON.stringify({ $schema: 'https://unpkg.com/@changesets/config@3.1.1/schema.json', changelog: '@changesets/cli/changelog', commit: false, access: 'public', baseBranch: 'main', updateInternalDependencies: 'patch', ignore: [] }, null, 2)}\n`,
    );
  }
  const changeset = join(changesetDir, `${slug}-initial-release.md`);
  writeFileSync(
    changeset,
    `---\n'${packageName}': minor\n---\n\nFirst release of ${packageName}, scaffolded by \`codefeedr new plugin\`.\n`,
  );

  return { packageName, dir, mode, files: listFiles(dir), changeset, localPackages };
}
