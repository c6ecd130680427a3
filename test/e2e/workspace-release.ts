// Step 1 of the plugin flow: publish every publishable workspace package with the
// project's release tooling (`changeset publish`, the publishing half of `npm run release`)
// to the registry the npm config names. To publish fresh versions on every run without
// touching the repo's package.json files, the built packages are copied to a temporary
// workspace and given a unique patch version (0.1.<unix seconds>). A patch, not a
// prerelease: `^0.1.0` ranges (peer ranges, the template's) then behave exactly as they
// will for a real release, which prerelease versions would not.
import { cpSync, existsSync, globSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { assertSucceeded, REPO, runCommand } from './npm-folder.ts';

interface WorkspacePackage {
  name: string;
  version: string;
  dir: string;
  private: boolean;
}

export function workspacePackages(): WorkspacePackage[] {
  const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  return root.workspaces.flatMap((pattern) =>
    globSync(join(pattern, 'package.json'), { cwd: REPO }).map((file) => {
      const pkg = JSON.parse(readFileSync(join(REPO, file), 'utf8')) as {
        name: string;
        version: string;
        private?: boolean;
      };
      return {
        name: pkg.name,
        version: pkg.version,
        dir: join(REPO, dirname(file)),
        private: pkg.private === true,
      };
    }),
  );
}

/** `lerna run build`: every package, in dependency order (nx caches unchanged ones). */
export async function buildWorkspace(env: NodeJS.ProcessEnv): Promise<void> {
  assertSucceeded(
    await runCommand('npx', ['lerna', 'run', 'build', '--concurrency', '2'], {
      cwd: REPO,
      env,
      timeoutMs: 600_000,
    }),
  );
}

/**
 * Copies the publishable packages (built) to `<tmp>/packages/*`, gives each version
 * `<major>.<minor>.<stamp>`, and runs `changeset publish --no-git-tag` there. Returns
 * name → published version.
 */
export async function releaseSnapshot(
  tmp: string,
  env: NodeJS.ProcessEnv,
  stamp: number,
): Promise<Map<string, string>> {
  const published = new Map<string, string>();
  const publishable = workspacePackages().filter((p) => !p.private);
  for (const pkg of publishable) {
    if (!existsSync(join(pkg.dir, 'dist')))
      throw new Error(`${pkg.name} has no dist/: the build did not produce it`);
    const target = join(tmp, 'packages', basename(pkg.dir));
    cpSync(pkg.dir, target, {
      recursive: true,
      filter: (path) => basename(path) !== 'node_modules',
    });
    const file = join(target, 'package.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const [major, minor] = pkg.version.split('.');
    json['version'] = `${major}.${minor}.${stamp}`;
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    published.set(pkg.name, json['version'] as string);
  }
  writeFileSync(
    join(tmp, 'package.json'),
    `${JSON.stringify({ name: 'codefeedr-release', private: true, workspaces: ['packages/*'] }, null, 2)}\n`,
  );
  // changesets finds workspaces the way manypkg detects the package manager: by its lockfile.
  writeFileSync(
    join(tmp, 'package-lock.json'),
    JSON.stringify({ name: 'codefeedr-release', lockfileVersion: 3, requires: true, packages: {} }),
  );
  mkdirSync(join(tmp, '.changeset'), { recursive: true });
  const config = JSON.parse(
    readFileSync(join(REPO, '.changeset', 'config.json'), 'utf8'),
  ) as Record<string, unknown>;
  // The private packages it ignores are not copied here.
  writeFileSync(
    join(tmp, '.changeset', 'config.json'),
    JSON.stringify({ ...config, ignore: [] }, null, 2),
  );
  const result = await runCommand(
    join(REPO, 'node_modules', '.bin', 'changeset'),
    ['publish', '--no-git-tag'],
    {
      cwd: tmp,
      env,
      timeoutMs: 180_000,
    },
  );
  assertSucceeded(result);
  return published;
}
