// The API reference of every published package, from its TypeScript sources with TypeDoc and
// typedoc-plugin-markdown, into the VitePress tree (generated/api, git-ignored). One page per
// entry point; each package page opens with what the package is for and where to start.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Application, LogLevel } from 'typedoc';

/** What each package is for, shown above its generated API: where a reader should start. */
const INTROS: Record<string, string> = {
  '@codefeedr/core':
    'The contracts (stages, buffers, serdes), the batch-at-a-time runtime, the in-memory buffer and the built-in stages (`sequence`, `ndjson-file`, `printer`). Start with [stages and buffers](/concepts/stages-and-buffers) and [run modes](/concepts/run-modes). Three entry points: the root (semver), `@codefeedr/core/buffer` for buffer authors (semver) and `@codefeedr/core/internal` (the operator chain; no stability promise).',
  '@codefeedr/registry':
    'Plugin discovery from manifests, and pipeline files: read, check (every problem with file:line:column) and load. See [pipeline files](/guides/pipeline-files) and the [pipeline-file format](/reference/pipeline-file).',
  '@codefeedr/cli':
    'The `codefeedr` command. `main(args)` runs it in-process; the commands are in the [CLI reference](/reference/cli).',
  '@codefeedr/testkit':
    'What a plugin tests itself with: `transformHarness` and the buffer, source and sink conformance suites. See [test a plugin](/guides/test-a-plugin) and [delivery guarantees](/concepts/delivery-guarantees).',
  '@codefeedr/plugin-kafka':
    'The Kafka buffer and the `kafka-input` / `kafka-output` stages. See [scale a stage out](/guides/scale-out).',
  '@codefeedr/plugin-redis':
    'The Redis Streams buffer and a Redis API-key manager. See [stages and buffers](/concepts/stages-and-buffers).',
  '@codefeedr/plugin-postgres':
    'PostgreSQL output (COPY + upsert, positions stored with rows) and input. See [write to PostgreSQL and MongoDB](/guides/databases).',
  '@codefeedr/plugin-mongodb':
    'MongoDB output (bulkWrite upserts), input and key manager. See [write to PostgreSQL and MongoDB](/guides/databases).',
  '@codefeedr/plugin-github':
    'GitHub events input, GH Archive replay input, and typed transforms per event type. See [GH Archive analytics](/guides/gh-archive).',
  '@codefeedr/pipelines-github':
    'Prebuilt pipelines over GitHub events: `github-summary` (what `npm start` runs), `github-to-postgres`, `github-to-mongo`, `trending-repositories`, `repository-activity`. See [GH Archive analytics](/guides/gh-archive).',
};

// VitePress's heading slugs (vitepress/dist/node: `slugify`, then -1, -2 … for repeats).
const rSpecial = /[\s~`!@#$%^&*()\-_+=[\]{}|\\;:"'“”‘’<>,.?/]+/g;
const slugify = (text: string): string =>
  text
    .normalize('NFKD')
    .replace(/[\u0300-\u036F]/g, '')
    // eslint-disable-next-line no-control-regex -- VitePress drops control characters too
    .replace(/[\u0000-\u001f]/g, '')
    .replace(rSpecial, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '')
    .replace(/^(\d)/, '_$1')
    .toLowerCase();

/** The anchors VitePress gives a page's headings. */
function headingSlugs(markdown: string): Set<string> {
  const slugs = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6} (.+)$/gm)) {
    const text = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/\\(.)/g, '$1')
      .replace(/[`*~]/g, '');
    const base = slugify(text);
    let slug = base;
    for (let n = 1; slugs.has(slug); n++) slug = `${base}-${n}`;
    slugs.add(slug);
  }
  return slugs;
}

/**
 * TypeDoc's anchors are its own (`core_error_codes`, `-1` for a name it saw before); each link
 * is pointed at the heading VitePress renders: the same anchor, else with `_` as `-`, else
 * without a numeric suffix.
 */
function fixAnchors(out: string, pages: string[]): void {
  const slugs = new Map(pages.map((p) => [p, headingSlugs(readFileSync(join(out, p), 'utf8'))]));
  for (const page of pages) {
    const text = readFileSync(join(out, page), 'utf8').replace(
      /\]\(([^)\s#]*)#([^)\s]+)\)/g,
      (link, target: string, anchor: string) => {
        const file = target === '' ? page : relative(out, join(out, dirname(page), target));
        const known = slugs.get(file);
        if (!known || known.has(anchor)) return link;
        const dashed = anchor.replace(/_/g, '-');
        const candidates = [dashed, dashed.replace(/-\d+$/, ''), anchor.replace(/-\d+$/, '')];
        const found = candidates.find((c) => known.has(c));
        return found ? `](${target}#${found})` : link;
      },
    );
    writeFileSync(join(out, page), text);
  }
}

/** The packages documented: every package and plugin with a src/index.ts, in a fixed order. */
export function apiPackages(repo: string): { name: string; dir: string }[] {
  const found: { name: string; dir: string }[] = [];
  for (const group of ['packages', 'plugins']) {
    for (const folder of readdirSync(join(repo, group)).sort()) {
      const dir = join(repo, group, folder);
      if (!existsSync(join(dir, 'src', 'index.ts'))) continue;
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        private?: boolean;
      };
      if (!pkg.private) found.push({ name: pkg.name, dir });
    }
  }
  return found;
}

/** Runs TypeDoc into `out` and returns the package pages it wrote (relative to `out`). */
export async function generateApi(repo: string, out: string): Promise<string[]> {
  rmSync(out, { recursive: true, force: true });
  const packages = apiPackages(repo);
  const app = await Application.bootstrapWithPlugins({
    entryPointStrategy: 'packages',
    entryPoints: packages.map((p) => p.dir),
    plugin: ['typedoc-plugin-markdown'],
    out,
    readme: 'none',
    logLevel: LogLevel.Error,
    disableSources: true,
    skipErrorChecking: true,
    excludeExternals: true,
    packageOptions: {
      readme: 'none',
      disableSources: true,
      skipErrorChecking: true,
      excludeExternals: true,
    },
    outputFileStrategy: 'modules',
    entryFileName: 'index',
    excludeScopesInPaths: true,
    hideBreadcrumbs: true,
    hidePageHeader: true,
    sanitizeComments: true,
    useCodeBlocks: false,
  } as never);
  const project = await app.convert();
  if (!project) throw new Error('TypeDoc could not convert the packages (see its output above)');
  await app.generateOutputs(project);
  if (app.logger.hasErrors()) throw new Error('TypeDoc reported errors (see its output above)');

  // A package with several entry points is a folder: its root entry (TypeDoc names it "" and
  // writes README.md) becomes root.md, and every page is titled with its import path.
  for (const p of packages) {
    const folder = join(out, p.name.replace(/^@[^/]+\//, ''));
    if (!existsSync(join(folder, 'index.md'))) continue;
    for (const file of readdirSync(folder).filter((f) => f.endsWith('.md') && f !== 'index.md')) {
      const entry = file === 'README.md' ? '' : `/${file.replace(/\.md$/, '')}`;
      const text = readFileSync(join(folder, file), 'utf8').replace(
        /^# .*$/m,
        `# ${p.name}${entry}`,
      );
      rmSync(join(folder, file));
      writeFileSync(join(folder, file === 'README.md' ? 'root.md' : file), text);
    }
    const index = readFileSync(join(folder, 'index.md'), 'utf8')
      .replace('- [](README.md)', `- [${p.name}](root.md) (the root entry point)`)
      .replace(/- \[(\w+)\]\((\w+)\.md\)/g, `- [${p.name}/$1]($2.md)`);
    writeFileSync(join(folder, 'index.md'), index);
  }
  const pages = (readdirSync(out, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) =>
    f.endsWith('.md'),
  );
  for (const page of pages) {
    const file = join(out, page);
    // Links into a renamed root entry (README.md → root.md), from any page.
    let text = readFileSync(file, 'utf8').replace(
      /\]\(((?:\.\.\/|[\w-]+\/)*)README\.md/g,
      ']($1root.md',
    );
    const title = /^# (.+)$/m.exec(text)?.[1]?.trim();
    const intro = title ? INTROS[title] : undefined;
    if (intro) text = text.replace(/^# .+$/m, (heading) => `${heading}\n\n${intro}\n`);
    writeFileSync(file, text);
  }
  fixAnchors(out, pages);
  const index = [
    '# API reference',
    '',
    'Generated at build time from each package’s TypeScript sources with TypeDoc, so it is',
    'always the API of this checkout. Each package’s public API is also checked in as',
    '`report.api.md` beside its package.json (API Extractor): a change to it is a visible diff in',
    'review. For how the pieces fit, start with the [concepts](/concepts/stages-and-buffers); for',
    'runnable examples, the [guides](/guides/write-a-plugin).',
    '',
    '| package | for |',
    '| --- | --- |',
    ...packages.map((p) => {
      const short = p.name.replace(/^@codefeedr\//, '');
      const target = existsSync(join(out, short, 'index.md')) ? `${short}/` : short;
      const pkg = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as {
        description?: string;
      };
      return `| [\`${p.name}\`](./${target}) | ${(pkg.description ?? '').replace(/\|/g, '&#124;')} |`;
    }),
    '',
  ].join('\n');
  writeFileSync(join(out, 'index.md'), index);
  return pages.map((p) => relative(out, join(out, p)));
}
