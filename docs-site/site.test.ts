// The built documentation site, in a real Chromium: every page renders without console errors,
// local search finds "watermark", the catalogue lists every plugin of the repository, and every
// internal link of the built HTML resolves to a built page and anchor. Screenshots of the home
// page and the catalogue go to .tmp/screenshots/. The site is docs-site/dist as `npm run build`
// (run by root `npm test` first) leaves it; ensureSite() rebuilds it when it is missing or stale.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageErrors } from '../test/services/chromium.ts';
import { resolveSitePath, serveStatic, type StaticServer } from './test-support/static-server.ts';
import { builtPages, dist, ensureSite, repo } from './test-support/site-build.ts';

const screenshots = join(repo, '.tmp', 'screenshots');

/** Every `id="…"` (and `name="…"`) of a built page. */
function anchorsOf(html: string): Set<string> {
  return new Set([...html.matchAll(/\s(?:id|name)="([^"]+)"/g)].map((m) => m[1]!));
}

const decodeEntities = (text: string): string =>
  text
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');

describe('docs site', () => {
  let browser: Browser;
  let server: StaticServer;
  let pages: string[];

  beforeAll(async () => {
    ensureSite();
    pages = builtPages().filter((p) => p !== '404.html');
    server = await serveStatic(dist);
    browser = await launchChromium();
    mkdirSync(screenshots, { recursive: true });
  }, 400_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('has the pages the docs promise', () => {
    for (const page of [
      'index.html',
      'getting-started.html',
      'concepts/stages-and-buffers.html',
      'concepts/run-modes.html',
      'concepts/event-time.html',
      'concepts/windows.html',
      'concepts/state-and-checkpoints.html',
      'concepts/delivery-guarantees.html',
      'guides/write-a-plugin.html',
      'guides/test-a-plugin.html',
      'guides/publish-a-plugin.html',
      'guides/pipeline-files.html',
      'guides/scale-out.html',
      'guides/gh-archive.html',
      'guides/databases.html',
      'reference/cli.html',
      'reference/pipeline-file.html',
      'reference/error-codes.html',
      'plugins.html',
      'api/index.html',
      'api/core/root.html',
    ])
      expect(pages, page).toContain(page);
    expect(existsSync(join(dist, 'plugins.json'))).toBe(true);
  });

  it('every internal link in the built HTML resolves to a built page and anchor', () => {
    const anchors = new Map<string, Set<string>>();
    const anchorsFor = (file: string): Set<string> => {
      if (!anchors.has(file)) anchors.set(file, anchorsOf(readFileSync(file, 'utf8')));
      return anchors.get(file)!;
    };
    const broken: string[] = [];
    let checked = 0;
    for (const page of builtPages()) {
      const html = readFileSync(join(dist, page), 'utf8');
      for (const m of html.matchAll(/\s(?:href|src)="([^"]*)"/g)) {
        const raw = decodeEntities(m[1]!);
        if (/^(?:[a-z]+:|\/\/)/i.test(raw) || raw === '') continue;
        const url = new URL(raw, `http://site/${page}`);
        const file = resolveSitePath(dist, url.pathname);
        checked++;
        if (!file) {
          broken.push(`${page}: ${raw} (no such page)`);
          continue;
        }
        const hash = decodeURIComponent(url.hash.slice(1));
        if (hash && file.endsWith('.html') && !anchorsFor(file).has(hash))
          broken.push(`${page}: ${raw} (no anchor #${hash})`);
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(broken).toEqual([]);
  });

  it('every page renders without console errors', { timeout: 240_000 }, async () => {
    const page = await browser.newPage();
    const errors = pageErrors(page);
    const failures: string[] = [];
    for (const path of pages) {
      errors.length = 0;
      const response = await page.goto(`${server.url}/${path}`, { waitUntil: 'load' });
      await page.waitForSelector('#app .VPContent, #app .VPHome', { timeout: 20_000 });
      const heading = (await page.textContent('h1'))?.trim() ?? '';
      if (response?.status() !== 200) failures.push(`${path}: HTTP ${response?.status()}`);
      if (!heading) failures.push(`${path}: no h1`);
      for (const e of errors) failures.push(`${path}: ${e}`);
    }
    await page.close();
    expect(pages.length).toBeGreaterThan(25);
    expect(failures).toEqual([]);
  });

  it('local search finds "watermark"', async () => {
    const page = await browser.newPage();
    const errors = pageErrors(page);
    await page.goto(`${server.url}/`, { waitUntil: 'load' });
    await page.click('.VPNavBarSearch button');
    const input = page.locator('.VPLocalSearchBox input');
    await input.fill('watermark');
    const results = page.locator('.VPLocalSearchBox .results .result');
    await results.first().waitFor({ timeout: 15_000 });
    const texts = await results.allTextContents();
    expect(texts.length).toBeGreaterThan(0);
    expect(texts.some((t) => /watermark/i.test(t))).toBe(true);
    expect(texts.some((t) => /event time and watermarks/i.test(t))).toBe(true);
    await page.screenshot({ path: join(screenshots, 'docs-search-watermark.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the catalogue lists every plugin in the repository', async () => {
    // Independent of the build code: the package names of the folders under plugins/.
    const plugins = readdirSync(join(repo, 'plugins'))
      .filter((d) => existsSync(join(repo, 'plugins', d, 'package.json')))
      .map((d) => {
        const pkg = JSON.parse(readFileSync(join(repo, 'plugins', d, 'package.json'), 'utf8'));
        return pkg.name as string;
      });
    expect(plugins.length).toBeGreaterThanOrEqual(6);
    const page = await browser.newPage();
    const errors = pageErrors(page);
    await page.goto(`${server.url}/plugins.html`, { waitUntil: 'load' });
    const headings = (await page.locator('.vp-doc h2').allTextContents()).map((t) =>
      t.replace(/[\s\u200b]*#?$/, '').trim(),
    );
    for (const name of plugins) expect(headings, name).toContain(name);
    expect(headings).toContain('@codefeedr/core');
    const rows = await page.locator('.vp-doc table tbody tr').count();
    expect(rows).toBeGreaterThan(30);
    await page.screenshot({ path: join(screenshots, 'docs-plugins.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('saves a screenshot of the home page', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = pageErrors(page);
    await page.goto(`${server.url}/`, { waitUntil: 'load' });
    await page.waitForSelector('.VPHero');
    expect(await page.textContent('.VPHero .name')).toContain('CodeFeedr');
    await page.screenshot({ path: join(screenshots, 'docs-home.png') });
    expect(existsSync(join(screenshots, 'docs-home.png'))).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
