// The harness's Verdaccio is offline on purpose (no uplinks), so an install from it only
// works for packages published into it. This seeds it with the third-party packages a
// flow needs, packed from the repo's own node_modules (no network): the dependency
// closure of the given roots, each version published once (Verdaccio keeps its storage,
// so later runs only check). Platform packages that are not installed here are dropped
// from optionalDependencies, as npm would skip them on this machine anyway.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

interface InstalledPackage {
  name: string;
  version: string;
  dir: string;
  pkg: Record<string, unknown> & {
    dependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
}

function findInstalled(name: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Every installed package reachable from `roots` (resolved from `fromDir`), @codefeedr/* excluded. */
export function dependencyClosure(roots: readonly string[], fromDir: string): InstalledPackage[] {
  const found = new Map<string, InstalledPackage>();
  const visit = (name: string, from: string, optional: boolean): void => {
    if (name.startsWith('@codefeedr/')) return;
    const file = findInstalled(name, from);
    if (!file) {
      if (optional) return;
      throw new Error(
        `seeding: ${name} (needed from ${from}) is not installed; run npm install at the repo root`,
      );
    }
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as InstalledPackage['pkg'];
    const key = `${pkg['name'] as string}@${pkg['version'] as string}`;
    if (found.has(key)) return;
    const dir = dirname(file);
    found.set(key, { name: pkg['name'] as string, version: pkg['version'] as string, dir, pkg });
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true);
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) {
      visit(dep, dir, pkg.peerDependenciesMeta?.[dep]?.optional === true);
    }
  };
  for (const root of roots) visit(root, fromDir, false);
  return [...found.values()];
}

function registryPath(registry: string, name: string): string {
  return new URL(name.replace('/', '%2f'), registry).toString();
}

/** semver-ish comparison good enough to keep `latest` at the highest seeded version. */
function newer(a: string, b: string): boolean {
  const parse = (v: string) => v.split(/[.+-]/).slice(0, 3).map(Number);
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
}

async function publishInstalled(
  registry: string,
  token: string,
  item: InstalledPackage,
  latest: string | undefined,
): Promise<void> {
  const { name, version, dir } = item;
  const manifest = { ...item.pkg };
  const optional = manifest.optionalDependencies ?? {};
  const keptOptional = Object.fromEntries(
    Object.entries(optional).filter(([dep]) => findInstalled(dep, dir)),
  );
  if (Object.keys(optional).length > 0) {
    manifest.optionalDependencies = keptOptional;
    if (manifest.dependencies) {
      manifest.dependencies = Object.fromEntries(
        Object.entries(manifest.dependencies).filter(
          ([dep]) => !(dep in optional) || dep in keptOptional,
        ),
      );
    }
  }
  // A tarball of the installed folder under `package/`, without nested node_modules.
  const tar = spawnSync(
    'tar',
    [
      '-czf',
      '-',
      '--exclude',
      `${basename(dir)}/node_modules`,
      '--transform',
      `s,^${basename(dir)},package,`,
      '-C',
      dirname(dir),
      basename(dir),
    ],
    { maxBuffer: 512 * 1024 * 1024 },
  );
  if (tar.status !== 0) throw new Error(`seeding: tar of ${dir} failed: ${tar.stderr.toString()}`);
  const data = tar.stdout;
  const file = `${name.replace(/^@[^/]+\//, '')}-${version}.tgz`;
  const body = {
    _id: name,
    name,
    'dist-tags': { latest: latest && !newer(version, latest) ? latest : version },
    versions: {
      [version]: {
        ...manifest,
        _id: `${name}@${version}`,
        dist: {
          shasum: createHash('sha1').update(data).digest('hex'),
          integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
          tarball: `${registryPath(registry, name)}/-/${file}`,
        },
      },
    },
    _attachments: {
      [file]: {
        content_type: 'application/octet-stream',
        data: data.toString('base64'),
        length: data.length,
      },
    },
  };
  const response = await fetch(registryPath(registry, name), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  if (!response.ok) {
    throw new Error(
      `seeding: publishing ${name}@${version} answered HTTP ${response.status}: ${await response.text()}`,
    );
  }
}

/** Publishes into `registry` every package of the closure it does not have yet; returns how many. */
export async function seedRegistry(
  registry: string,
  token: string,
  packages: readonly InstalledPackage[],
): Promise<number> {
  let published = 0;
  const byName = new Map<string, InstalledPackage[]>();
  for (const p of packages) {
    const versions = byName.get(p.name) ?? [];
    if (!versions.some((v) => v.version === p.version)) byName.set(p.name, [...versions, p]);
  }
  // A few packages at a time: Verdaccio writes each to disk; 2 cores are shared.
  const names = [...byName.keys()];
  const worker = async (): Promise<void> => {
    for (let name = names.shift(); name !== undefined; name = names.shift()) {
      const response = await fetch(registryPath(registry, name), {
        headers: { authorization: `Bearer ${token}` },
      });
      const packument = response.ok
        ? ((await response.json()) as {
            versions?: Record<string, unknown>;
            'dist-tags'?: Record<string, string>;
          })
        : { versions: {} };
      if (!response.ok) await response.body?.cancel();
      let latest = packument['dist-tags']?.['latest'];
      for (const item of byName.get(name)!) {
        if (packument.versions?.[item.version]) continue;
        await publishInstalled(registry, token, item, latest);
        if (!latest || newer(item.version, latest)) latest = item.version;
        published++;
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  return published;
}
