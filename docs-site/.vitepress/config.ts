// The documentation site. Hand-written pages live beside this folder; the pages made from the
// code (catalogue, CLI reference, error codes, API) are written into generated/ by
// generate/index.ts and rewritten to their public paths. Samples shown on pages are real files
// under examples/ (included with `<<< @/examples/…`) or shell blocks that doc-samples.test.ts runs.
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig, type DefaultTheme } from 'vitepress';

const site = join(import.meta.dirname, '..');
const generated = join(site, 'generated');

function apiSidebar(): DefaultTheme.SidebarItem[] {
  const dir = join(generated, 'api');
  if (!existsSync(dir)) return [];
  const items: DefaultTheme.SidebarItem[] = [{ text: 'Overview', link: '/api/' }];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (entry.isDirectory()) {
      const pages = readdirSync(join(dir, entry.name))
        .filter((f) => f.endsWith('.md') && f !== 'index.md')
        .sort((a, b) => (a === 'root.md' ? -1 : b === 'root.md' ? 1 : a.localeCompare(b)));
      items.push({
        text: `@codefeedr/${entry.name}`,
        link: `/api/${entry.name}/`,
        collapsed: true,
        items: pages.map((f) => {
          const name = f.replace(/\.md$/, '');
          return {
            text: name === 'root' ? `@codefeedr/${entry.name}` : `@codefeedr/${entry.name}/${name}`,
            link: `/api/${entry.name}/${name}`,
          };
        }),
      });
    } else if (entry.name.endsWith('.md') && entry.name !== 'index.md') {
      const name = entry.name.replace(/\.md$/, '');
      items.push({ text: `@codefeedr/${name}`, link: `/api/${name}` });
    }
  }
  return items;
}

export default defineConfig({
  title: 'CodeFeedr',
  description:
    'Streaming pipelines of stages joined by buffers, with Flink semantics inside each stage, as npm plugins.',
  lang: 'en',
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
  cleanUrls: false,
  outDir: 'dist',
  srcExclude: ['README.md', 'examples/**', 'node_modules/**', 'dist/**'],
  rewrites: { 'generated/:rest*': ':rest*' },
  ignoreDeadLinks: false,
  lastUpdated: false,
  markdown: { theme: { light: 'github-light', dark: 'github-dark' } },
  buildEnd(config) {
    copyFileSync(join(generated, 'plugins.json'), join(config.outDir, 'plugins.json'));
  },
  themeConfig: {
    search: { provider: 'local' },
    outline: [2, 3],
    nav: [
      { text: 'Getting started', link: '/getting-started' },
      { text: 'Concepts', link: '/concepts/stages-and-buffers' },
      { text: 'Guides', link: '/guides/write-a-plugin' },
      { text: 'Reference', link: '/reference/cli' },
      { text: 'Plugins', link: '/plugins' },
    ],
    sidebar: {
      '/api/': [{ text: 'API reference', items: apiSidebar() }],
      '/': [
        { text: 'Getting started', link: '/getting-started' },
        {
          text: 'Concepts',
          items: [
            { text: 'Stages and buffers', link: '/concepts/stages-and-buffers' },
            { text: 'Run modes', link: '/concepts/run-modes' },
            { text: 'Event time and watermarks', link: '/concepts/event-time' },
            { text: 'Windows', link: '/concepts/windows' },
            { text: 'State and checkpoints', link: '/concepts/state-and-checkpoints' },
            { text: 'Delivery guarantees', link: '/concepts/delivery-guarantees' },
          ],
        },
        {
          text: 'Guides',
          items: [
            { text: 'Write a plugin', link: '/guides/write-a-plugin' },
            { text: 'Test a plugin', link: '/guides/test-a-plugin' },
            { text: 'Publish a plugin', link: '/guides/publish-a-plugin' },
            { text: 'Compose a pipeline file', link: '/guides/pipeline-files' },
            { text: 'Scale a stage out over Kafka', link: '/guides/scale-out' },
            { text: 'Deploy to Kubernetes or systemd', link: '/guides/deploy' },
            { text: 'Watch a running pipeline', link: '/guides/dashboard' },
            { text: 'GH Archive analytics', link: '/guides/gh-archive' },
            { text: 'Write to PostgreSQL and MongoDB', link: '/guides/databases' },
          ],
        },
        {
          text: 'Reference',
          items: [
            { text: 'CLI', link: '/reference/cli' },
            { text: 'Pipeline-file format', link: '/reference/pipeline-file' },
            { text: 'Error codes', link: '/reference/error-codes' },
            { text: 'Plugin catalogue', link: '/plugins' },
            { text: 'API', link: '/api/' },
          ],
        },
      ],
    },
    footer: { message: 'Apache-2.0 · generated from the code of this checkout' },
  },
});
