// Generates the pages that come from the code, into docs-site/generated (git-ignored; VitePress
// rewrites generated/x.md to /x): the plugin catalogue (and plugins.json), the CLI reference,
// the error codes and the API reference. Run by `npm run build` in docs-site before VitePress.
// Node >= 22.18 runs this TypeScript directly (only erasable syntax here).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateApi } from './api.ts';
import { catalogue, cataloguePage } from './catalogue.ts';
import { cliReferencePage } from './cli-reference.ts';
import { errorCodesPage } from './error-codes.ts';

const site = join(import.meta.dirname, '..');
const repo = join(site, '..');
const generated = join(site, 'generated');
const started = performance.now();

mkdirSync(join(generated, 'reference'), { recursive: true });
const plugins = catalogue(repo);
writeFileSync(join(generated, 'plugins.json'), `${JSON.stringify(plugins, null, 2)}\n`);
writeFileSync(join(generated, 'plugins.md'), cataloguePage(plugins));
writeFileSync(join(generated, 'reference', 'cli.md'), await cliReferencePage(repo));
writeFileSync(join(generated, 'reference', 'error-codes.md'), errorCodesPage(repo));
const api = await generateApi(repo, join(generated, 'api'));

const components = plugins.reduce((n, p) => n + p.components.length, 0);
console.log(
  `generated: catalogue (${plugins.length} plugins, ${components} components), CLI reference, error codes, API (${api.length} pages) in ${((performance.now() - started) / 1000).toFixed(1)}s`,
);
