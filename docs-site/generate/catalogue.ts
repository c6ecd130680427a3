// The plugin catalogue, from the manifests of the repository's workspace plugins (and core's
// built-ins): the same data `codefeedr plugins list` shows, so the page never drifts from the
// code. Written as a VitePress page (generated/plugins.md → /plugins.html) and as plugins.json.
import { discoverPlugins } from '@codefeedr/registry';
import { escapeForPage as escape } from './markdown-escape.ts';

export interface CatalogueConfigKey {
  key: string;
  type: string;
  required: boolean;
  description: string;
}

export interface CatalogueComponent {
  id: string;
  kind: string;
  description: string;
  inputTypes: string[];
  outputType: string | null;
  guarantees: string[];
  config: CatalogueConfigKey[];
}

export interface CataloguePlugin {
  name: string;
  version: string;
  description: string;
  builtin: boolean;
  components: CatalogueComponent[];
}

export function catalogue(repo: string): CataloguePlugin[] {
  return discoverPlugins(repo)
    .plugins.filter((p) => p.manifest !== undefined)
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
            { type?: string | string[]; description?: string }
          >,
        ).map(([key, schema]) => ({
          key,
          type: Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type ?? 'any'),
          required: ((c.configSchema['required'] ?? []) as string[]).includes(key),
          description: schema.description ?? '',
        })),
      })),
    }));
}

/** Anchor of a plugin's section: its package name, as VitePress would slug the heading. */
export function pluginAnchor(name: string): string {
  return name.replace(/[@/:]+/g, '-').replace(/^-+|-+$/g, '');
}

function types(c: CatalogueComponent): string {
  if (c.kind === 'input') return c.outputType ? `→ ${c.outputType}` : '';
  return `${c.inputTypes.join(', ')}${c.outputType ? ` → ${c.outputType}` : ''}`;
}

export function cataloguePage(plugins: CataloguePlugin[]): string {
  const components = plugins.reduce((n, p) => n + p.components.length, 0);
  const sections = plugins.map((p) => {
    const rows = p.components.map((c) => {
      const config = c.config
        .map((k) => `<code>${escape(k.key)}</code>${k.required ? '\\*' : ''}: ${escape(k.type)}`)
        .join('<br>');
      const guarantees = c.guarantees.length > 0 ? ` (${c.guarantees.join(', ')})` : '';
      return `| <code>${escape(c.id)}</code> | ${c.kind} | ${escape(types(c))} | ${config} | ${escape(c.description)}${escape(guarantees)} |`;
    });
    return [
      `## ${p.name} {#${pluginAnchor(p.name)}}`,
      '',
      `<p class="plugin-meta"><code>${escape(p.name)}@${escape(p.version)}</code>${p.builtin ? ' · built into the CLI' : ''}</p>`,
      '',
      escape(p.description),
      '',
      '| component | kind | types | config | description |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n');
  });
  return [
    '---',
    'outline: [2, 2]',
    '---',
    '',
    '# Plugin catalogue',
    '',
    `${plugins.length} plugins, ${components} components, generated at build time from the \`codefeedr\``,
    'manifests of the plugins in this repository (and the built-ins of `@codefeedr/core`) — the data',
    '`codefeedr plugins list` and `codefeedr plugins info <name>` print, so this page cannot drift',
    'from the code. Use a component in a [pipeline file](/guides/pipeline-files) by its full name',
    '(`@codefeedr/plugin-github:replay`) or, when only one installed package offers it, its short',
    'name (`replay`). Required config keys are starred; `codefeedr plugins info <name>` lists nested',
    'keys, defaults and bounds too.',
    '',
    ...sections,
  ].join('\n');
}
