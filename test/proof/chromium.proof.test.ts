// The system Chromium runs headless under playwright-core: a page served from loopback
// renders, runs its script, and reacts to a click.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageErrors } from '../services/chromium.ts';

const html = `<!doctype html><title>proof</title><button id="b">0</button>
<script>const b = document.getElementById('b'); b.onclick = () => { b.textContent = String(Number(b.textContent) + 1); };</script>`;

describe('chromium', () => {
  let browser: Browser;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    browser = await launchChromium();
    server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end(html),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('renders a loopback page and runs its script on a click', async () => {
    const page = await browser.newPage();
    const errors = pageErrors(page);
    await page.goto(url);
    await page.click('#b');
    await page.click('#b');
    expect(await page.textContent('#b')).toBe('2');
    expect(await page.title()).toBe('proof');
    expect(errors).toEqual([]);
  });
});
