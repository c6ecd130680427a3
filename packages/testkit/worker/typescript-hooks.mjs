// Module resolution hooks that let a plain Node 24 child process run the same TypeScript
// sources vitest runs (Node strips the types itself):
//  - a bare import of a workspace package (symlinked into node_modules, not installed
//    from a registry) resolves to its src/index.ts when that file exists, so a child
//    never runs a stale or missing dist/ build; a subpath (`@codefeedr/core/buffer`) to the
//    `source` file its package.json `exports` entry names;
//  - a relative `./x.js` import (NodeNext style) resolves to `./x.ts` when only that exists.
// Installed packages (real folders under node_modules) resolve exactly as Node does.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BARE_PACKAGE = /^(@[^/]+\/[^/]+|[^./@][^/]*)(\/[^/]+)?$/;
const sourceEntries = new Map();

function workspaceSourceEntry(specifier, parentURL) {
  const [, name, subpath] = specifier.match(BARE_PACKAGE);
  if (!parentURL?.startsWith('file:')) return undefined;
  let dir = dirname(fileURLToPath(parentURL));
  const cacheKey = `${specifier}\0${dir}`;
  if (sourceEntries.has(cacheKey)) return sourceEntries.get(cacheKey);
  let found;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) {
      const real = realpathSync(candidate);
      const entry =
        subpath === undefined ? join(real, 'src', 'index.ts') : subpathSource(real, subpath);
      if (!real.split(sep).includes('node_modules') && existsSync(entry))
        found = pathToFileURL(entry).href;
      break;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  sourceEntries.set(cacheKey, found);
  return found;
}

/** The TypeScript source of a package subpath: `exports["./sub"].source` in its package.json. */
function subpathSource(packageDir, subpath) {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  const source = pkg.exports?.[`.${subpath}`]?.source;
  return typeof source === 'string' ? join(packageDir, source) : join(packageDir, 'missing');
}

export async function resolve(specifier, context, nextResolve) {
  if (BARE_PACKAGE.test(specifier) && !specifier.startsWith('node:')) {
    const source = workspaceSourceEntry(specifier, context.parentURL);
    if (source !== undefined) return { url: source, shortCircuit: true };
  }
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    if (relative && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
      const url = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
      if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
    }
    throw error;
  }
}
