// Builds the plugin catalogue (dist/plugins.html and dist/plugins.json) from the
// manifests of the repo's workspace plugins: the same data `codefeedr plugins list`
// shows, so the docs never drift from the code. Run: npm run build -w @codefeedr/docs-site
// (Node >= 22.18 runs this TypeScript directly; only erasable syntax here).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { discoverPlugins } from '@codefeedr/registry';

const repo = join(import.meta.dirname, '..');
const out = join(import.meta.dirname, 'dist');

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const catalog = discoverPlugins(repo);
const plugins = catalog.plugins
  .filter((p) => p.manifest !== undefined)
  .sort((a, b) => a.name.localeCompare(b.name))
  .map((p) => ({
    name: p.name,
    version: p.version,
    description: p.description,
    builtin: p.source === 'builtin',
    components: (p.manifest?.components ?? []).map((c) => ({
      id: `${p.name}:${c.name}`,
      kind: c.kind,
      description: c.description,
      inputTypes: c.inputTypes ?? [],
      outputType: c.outputType ?? null,
      guarantees: c.guarantees ?? [],
      config: Object.entries(
        (c.configSchema['properties'] ?? {}) as Record<
          string,
          { type?: string; description?: string }
        >,
      ).map(([key, schema]) => ({
        key,
        type: schema.type ?? 'any',
        required: ((c.configSchema['required'] ?? []) as string[]).includes(key),
        description: schema.description ?? '',
      })),
    })),
  }));

const rows = plugins
  .map(
    (p) => `<section>
  <h2>${escape(p.name)} <small>${escape(p.version)}</small></h2>
  <p>${escape(p.description)}</p>
  <table>
    <tr><th>component</th><th>kind</th><th>types</th><th>config</th><th>description</th></tr>
${p.components
  .map(
    (c) =>
      `    <tr><td><code>${escape(c.id)}</code></td><td>${c.kind}</td><td>${escape(
        c.kind === 'input'
          ? `→ ${c.outputType}`
          : `${c.inputTypes.join(', ')}${c.outputType ? ` → ${c.outputType}` : ''}`,
      )}</td><td>${c.config.map((k) => `<code>${escape(k.key)}</code>${k.required ? '*' : ''}: ${escape(k.type)}`).join('<br>')}</td><td>${escape(c.description)}</td></tr>`,
  )
  .join('\n')}
  </table>
</section>`,
  )
  .join('\n');

mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'plugins.json'), `${JSON.stringify(plugins, null, 2)}\n`);
writeFileSync(
  join(out, 'plugins.html'),
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CodeFeedr plugin catalogue</title>
<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}small{color:#666}</style>
</head><body>
<h1>CodeFeedr plugin catalogue</h1>
<p>Generated from the <code>codefeedr</code> manifests of the plugins in this repository. Install one with <code>npx codefeedr plugins add &lt;name&gt;</code>; required config keys are marked *.</p>
${rows}
</body></html>
`,
);
console.log(
  `catalogue: ${plugins.length} plugins, ${plugins.reduce((n, p) => n + p.components.length, 0)} components → ${out}`,
);
