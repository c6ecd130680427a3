// Against the harness's real Verdaccio: a plugin published over npm's publish protocol
// is found by keyword and term, with the components of its manifest.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { RegistrySearchError } from './errors.js';
import { fetchPackageVersion, packageExists, searchPlugins } from './remote-search.js';

function registry(): string {
  const url = process.env['CODEFEEDR_NPM_REGISTRY'];
  if (!url)
    throw new Error(
      'CODEFEEDR_NPM_REGISTRY is not set: run through vitest, whose globalSetup starts Verdaccio',
    );
  return url;
}

/** Registers a throwaway user (what `npm adduser` does) and returns its token. */
async function createToken(): Promise<string> {
  const name = `rs-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const response = await fetch(new URL(`-/user/org.couchdb.user:${name}`, registry()), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name,
      password: `pw-${name}`,
      type: 'user',
      roles: [],
      date: new Date().toISOString(),
    }),
  });
  const body = (await response.json()) as { token?: string };
  if (!body.token) throw new Error(`creating a Verdaccio user failed: HTTP ${response.status}`);
  return body.token;
}

/** A one-file tarball (ustar header + package.json), as `npm pack` would make. */
function tarball(pkg: Record<string, unknown>): Buffer {
  const body = Buffer.from(JSON.stringify(pkg));
  const header = Buffer.alloc(512);
  header.write('package/package.json', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return gzipSync(Buffer.concat([header, body, padding, Buffer.alloc(1024)]));
}

async function publish(
  token: string,
  pkg: { name: string; version: string } & Record<string, unknown>,
): Promise<void> {
  const data = tarball(pkg);
  const file = `${pkg.name}-${pkg.version}.tgz`;
  const response = await fetch(new URL(pkg.name, registry()), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      _id: pkg.name,
      name: pkg.name,
      'dist-tags': { latest: pkg.version },
      versions: {
        [pkg.version]: {
          ...pkg,
          _id: `${pkg.name}@${pkg.version}`,
          dist: {
            shasum: createHash('sha1').update(data).digest('hex'),
            integrity: `sha512-${createHash('sha512').update(data).digest('base64')}`,
            tarball: new URL(`${pkg.name}/-/${file}`, registry()).toString(),
          },
        },
      },
      _attachments: {
        [file]: {
          content_type: 'application/octet-stream',
          data: data.toString('base64'),
          length: data.length,
        },
      },
    }),
  });
  expect(response.status, await response.text()).toBeLessThan(300);
}

describe('searchPlugins (real Verdaccio)', () => {
  it('finds a published plugin by term, with its manifest components, and skips non-plugins', async () => {
    const token = await createToken();
    const unique = `zq${Date.now().toString(36)}`;
    const manifest = {
      apiVersion: 1,
      components: [
        {
          name: 'ticks',
          kind: 'input',
          export: 'ticks',
          description: 'Ticks.',
          configSchema: { type: 'object' },
          outputType: 'x.Tick@1',
        },
      ],
    };
    await publish(token, {
      name: `codefeedr-plugin-${unique}`,
      version: '1.2.3',
      description: 'A test plugin.',
      keywords: ['codefeedr-plugin'],
      codefeedr: manifest,
    });
    await publish(token, { name: `not-a-plugin-${unique}`, version: '1.0.0', keywords: ['other'] });

    const results = await searchPlugins(unique, { registry: registry() });
    expect(results).toEqual([
      {
        name: `codefeedr-plugin-${unique}`,
        version: '1.2.3',
        description: 'A test plugin.',
        components: [{ name: 'ticks', kind: 'input', description: 'Ticks.' }],
      },
    ]);
    expect(await packageExists(`codefeedr-plugin-${unique}`, { registry: registry() })).toBe(true);
    expect(
      await packageExists(`codefeedr-plugin-${unique}-missing`, { registry: registry() }),
    ).toBe(false);
    expect(
      (
        await fetchPackageVersion(`codefeedr-plugin-${unique}`, '^1.0.0', { registry: registry() })
      )?.['codefeedr'],
    ).toEqual(manifest);
    expect(
      await fetchPackageVersion(`codefeedr-plugin-${unique}`, '^2.0.0', { registry: registry() }),
    ).toBeUndefined();
  });

  it('reports an unreachable registry as a RegistrySearchError', async () => {
    await expect(
      searchPlugins('x', { registry: 'http://127.0.0.1:9/', timeoutMs: 2000 }),
    ).rejects.toBeInstanceOf(RegistrySearchError);
  });
});
