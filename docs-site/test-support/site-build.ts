// The built site for the tests: docs-site/dist as `npm run build` (lerna, which root `npm test`
// runs first) leaves it, rebuilt here when it is missing or older than any source of the site.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const site = join(import.meta.dirname, '..');
export const repo = join(site, '..');
export const dist = join(site, 'dist');

const SOURCE_DIRS = ['.', 'concepts', 'guides', 'reference', 'examples', 'generate', '.vitepress'];

function newestSource(): number {
  let newest = 0;
  for (const dir of SOURCE_DIRS) {
    const abs = join(site, dir);
    const files =
      dir === '.'
        ? readdirSync(abs).filter((f) => f.endsWith('.md') || f === 'package.json')
        : (readdirSync(abs, { recursive: true, encoding: 'utf8' }) as string[]).filter(
            (f) => !f.startsWith('cache') && !f.includes('node_modules'),
          );
    for (const f of files) {
      const stat = statSync(join(abs, f));
      if (stat.isFile()) newest = Math.max(newest, stat.mtimeMs);
    }
  }
  return newest;
}

/** Builds the site unless dist is newer than every source; a failed build fails with its output. */
export function ensureSite(): { built: boolean } {
  const index = join(dist, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestSource()) return { built: false };
  try {
    execFileSync('npm', ['run', 'build'], {
      cwd: site,
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 300_000,
      env: {
        ...process.env,
        PATH: `${join(repo, 'node_modules', 'node', 'bin')}:${process.env.PATH}`,
      },
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `The docs site did not build:\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`,
      { cause: error },
    );
  }
  return { built: true };
}

/** Every built HTML page, as a path relative to dist (`guides/scale-out.html`). */
export function builtPages(): string[] {
  return (readdirSync(dist, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('.html'))
    .sort();
}
