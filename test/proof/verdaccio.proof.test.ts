// Proves the harness's Verdaccio is a working npm registry for the npm CLI: publish a
// freshly generated package, install it into another folder, read the installed file.
// Each folder has its own .npmrc passed as --userconfig, so ~/.npmrc is never touched.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { npmChildEnv, prepareNpmFolder } from '../services/verdaccio.ts';
import { requireEnv, runId } from './env.ts';

function npm(cwd: string, npmrc: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'npm',
      [...args, '--userconfig', npmrc, '--cache', join(cwd, '.npm-cache')],
      {
        cwd,
        env: npmChildEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`npm ${args.join(' ')} exited ${String(code)}:\n${output}`)),
    );
  });
}

describe('Verdaccio (npm CLI)', () => {
  const registry = requireEnv('CODEFEEDR_NPM_REGISTRY');
  const root = mkdtempSync(join(tmpdir(), 'codefeedr-verdaccio-proof-'));
  const name = `codefeedr-proof-${runId()}`;
  const content = `module.exports = ${JSON.stringify(`hello from ${name}`)};\n`;

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('publishes a package with npm and installs it from the registry', async () => {
    const publishDir = join(root, 'publish');
    const installDir = join(root, 'install');
    mkdirSync(publishDir);
    mkdirSync(installDir);

    writeFileSync(
      join(publishDir, 'package.json'),
      JSON.stringify({ name, version: '1.0.0', main: 'index.js', license: 'MIT' }, null, 2),
    );
    writeFileSync(join(publishDir, 'index.js'), content);
    const publisher = await prepareNpmFolder(publishDir);
    expect(readFileSync(publisher.npmrc, 'utf8')).toContain(`registry=${registry}`);
    await npm(publishDir, publisher.npmrc, ['publish']);

    const packument = (await (await fetch(new URL(name, registry))).json()) as {
      'dist-tags'?: { latest?: string };
    };
    expect(packument['dist-tags']?.latest).toBe('1.0.0');

    writeFileSync(
      join(installDir, 'package.json'),
      JSON.stringify({ name: 'proof-consumer', version: '0.0.0', private: true }),
    );
    const consumer = await prepareNpmFolder(installDir);
    await npm(installDir, consumer.npmrc, ['install', `${name}@1.0.0`]);

    expect(readFileSync(join(installDir, 'node_modules', name, 'index.js'), 'utf8')).toBe(content);
    const lock = JSON.parse(readFileSync(join(installDir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string }>;
    };
    expect(lock.packages[`node_modules/${name}`]?.resolved).toBe(
      new URL(`${name}/-/${name}-1.0.0.tgz`, registry).href,
    );
  });
});
