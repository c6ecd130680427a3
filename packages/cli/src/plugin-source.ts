import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { PackageJson } from '@codefeedr/registry';

/**
 * Where `codefeedr plugins add <spec>` installs from: a registry name (with an optional
 * `@version`), a folder, a tarball (`.tgz` file or URL), or a git URL — the same specs
 * `npm install` takes, so plugins that are not published anywhere can still be added.
 */
export type PluginSource =
  | { kind: 'registry'; name: string; range: string }
  | { kind: 'folder'; spec: string; path: string; pkg: PackageJson | undefined }
  | { kind: 'tarball'; spec: string; pkg: PackageJson | undefined }
  | { kind: 'git'; spec: string };

const GIT =
  /^(git\+[a-z]+:\/\/|git:\/\/|github:|gitlab:|bitbucket:|gist:)|^https?:\/\/.+\.git(#.*)?$/i;
const TARBALL = /\.(tgz|tar\.gz|tar)$/i;

export function pluginSource(spec: string, cwd: string): PluginSource {
  if (GIT.test(spec)) return { kind: 'git', spec };
  if (/^https?:\/\//i.test(spec)) return { kind: 'tarball', spec, pkg: undefined };
  const local = spec.startsWith('file:') ? spec.slice(5) : spec;
  const looksLocal =
    spec.startsWith('file:') ||
    local.startsWith('.') ||
    isAbsolute(local) ||
    TARBALL.test(local) ||
    existsSync(resolve(cwd, local));
  if (looksLocal) {
    const path = resolve(cwd, local);
    if (TARBALL.test(local)) return { kind: 'tarball', spec: path, pkg: tarballPackageJson(path) };
    const pkg = existsSync(join(path, 'package.json'))
      ? (JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as PackageJson)
      : undefined;
    return { kind: 'folder', spec: path, path, pkg };
  }
  const at = spec.lastIndexOf('@');
  const [name, range] = at > 0 ? [spec.slice(0, at), spec.slice(at)] : [spec, ''];
  return { kind: 'registry', name, range };
}

/** package.json of a local tarball, read without unpacking it (npm packs it under `package/`). */
function tarballPackageJson(file: string): PackageJson | undefined {
  try {
    if (!statSync(file).isFile()) return undefined;
    const text = execFileSync('tar', ['-xzOf', file, 'package/package.json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return JSON.parse(text) as PackageJson;
  } catch {
    return undefined;
  }
}

/** `dependencies` and `devDependencies` of the project, to see which one npm just added. */
export function projectDependencies(cwd: string): Map<string, string> {
  try {
    const pkg = JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as PackageJson;
    return new Map(Object.entries({ ...pkg.dependencies, ...pkg.devDependencies }));
  } catch {
    return new Map();
  }
}
