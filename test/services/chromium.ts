// Chromium from Debian's `chromium` package, driven through playwright-core pointed at the
// system browser (no browser download: playwright's own builds are not on a registry here).
// Not a long-running service: each browser test launches its own headless browser.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { aptInstall } from './common.ts';

export const CHROMIUM = '/usr/bin/chromium';

/** Installs Debian's chromium when it is missing (root, apt; serialised like every apt install). */
export async function ensureChromium(): Promise<string> {
  await aptInstall(['chromium'], () => existsSync(CHROMIUM));
  return CHROMIUM;
}

/** A headless system Chromium; close it in afterAll. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = await ensureChromium();
  // --no-sandbox: tests run as root, where Chromium refuses its sandbox.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
}

/**
 * Every console error and uncaught page error of `page`, collected from now on; a test
 * asserts the list is empty after its page has rendered.
 */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
  return errors;
}
