import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PackageJsonInvalidError } from './errors.js';

export type PackageJson = Record<string, unknown> & {
  name?: string;
  version?: string;
  description?: string;
  keywords?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  workspaces?: string[] | { packages?: string[] };
};

export function readPackageJson(file: string): PackageJson {
  return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
}

/**
 * Reads a package.json discovery depends on: undefined when there is none, a
 * PackageJsonInvalidError naming the file and the JSON problem when it is malformed.
 */
export function readPackageJsonFor(
  file: string,
  role: 'project' | 'workspace' | 'dependency',
): PackageJson | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new PackageJsonInvalidError(file, role, `it cannot be read (${code ?? String(error)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PackageJsonInvalidError(
      file,
      role,
      `it is not valid JSON (${(error as Error).message})`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new PackageJsonInvalidError(file, role, 'it is not a JSON object');
  return value as PackageJson;
}

/**
 * Where Node would find `<name>/package.json` from `fromDir`: the nearest
 * node_modules/<name> walking up, as require/import resolution does.
 */
export function findInstalledPackage(name: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The file `import('<package>')` loads: the `.` entry of the exports map (import
 * condition first), else `module`, else `main`, else index.js.
 */
export function packageEntry(dir: string, pkg: PackageJson): string {
  const pick = (target: unknown): string | undefined => {
    if (typeof target === 'string') return target;
    if (Array.isArray(target)) {
      for (const t of target) {
        const found = pick(t);
        if (found) return found;
      }
      return undefined;
    }
    if (typeof target === 'object' && target !== null) {
      const conditions = target as Record<string, unknown>;
      for (const condition of ['import', 'node', 'default']) {
        if (condition in conditions) {
          const found = pick(conditions[condition]);
          if (found) return found;
        }
      }
    }
    return undefined;
  };
  const exportsField = pkg['exports'];
  let entry: string | undefined;
  if (exportsField !== undefined) {
    const dot =
      typeof exportsField === 'object' &&
      exportsField !== null &&
      !Array.isArray(exportsField) &&
      Object.keys(exportsField).some((k) => k.startsWith('.'))
        ? (exportsField as Record<string, unknown>)['.']
        : exportsField;
    entry = pick(dot);
  }
  entry ??= typeof pkg['module'] === 'string' ? pkg['module'] : undefined;
  entry ??= typeof pkg['main'] === 'string' ? pkg['main'] : 'index.js';
  return join(dir, entry);
}
