// Secrets from ${ENV} never reach any output: human errors, --json errors and their problems,
// --verbose stacks and debug logs, JSON log lines, the metrics endpoint, dead-letter reasons
// and `codefeedr config`. The secrets have the shapes that break naive URL pasting and
// substring redaction: @, /, :, %, spaces.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { cli, exited, project, spawnCli, type CliResult } from './cli-fixture.js';

const stamp = `${process.pid}${Date.now() % 100_000}`;
const SECRETS = {
  REDIS_PASSWORD: `p@ss/w:rd ${stamp}`,
  API_TOKEN: `tok%20en:/@x${stamp}`,
  FILE_PART: `fi le@${stamp}%2F:x`,
};

/** Every form a secret could be printed in: as is, percent-encoded, and the pieces a URL parser would cut it into. */
function formsOf(secret: string): string[] {
  const url = new URL('redis://host');
  url.password = secret;
  const pieces = secret.split(/[@/:]/).filter((p) => p.length >= 6);
  return [...new Set([secret, encodeURIComponent(secret), url.password, ...pieces])];
}

function expectNoSecret(where: string, text: string): void {
  for (const [name, secret] of Object.entries(SECRETS)) {
    for (const form of formsOf(secret)) {
      expect(text.includes(form), `${name} (as "${form}") leaked into ${where}:\n${text}`).toBe(
        false,
      );
    }
  }
}

function sweep(label: string, result: CliResult): void {
  expectNoSecret(`${label} stdout`, result.stdout);
  expectNoSecret(`${label} stderr`, result.stderr);
}

const redisUrl = () => {
  const url = process.env['CODEFEEDR_REDIS_URL'];
  if (!url) throw new Error('CODEFEEDR_REDIS_URL is not set: run through vitest (global setup)');
  return new URL(url);
};

describe('secrets in every output path', () => {
  it('a Redis password with @ / : and spaces, refused by the server: human, --json, --verbose', async () => {
    const { hostname, port } = redisUrl();
    const dir = project({
      'p.yaml': [
        'name: secret-redis',
        `buffer: { use: '@codefeedr/plugin-redis:redis', with: { url: 'redis://nobody-${stamp}:\${REDIS_PASSWORD}@${hostname}:${port}/0' } }`,
        'stages:',
        '  - { id: n, use: sequence, with: { to: 3 } }',
        '  - { id: o, use: ndjson-file, from: n, with: { path: /dev/null } }',
        '',
      ].join('\n'),
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-redis': '*' } }),
    );
    for (const flags of [[], ['--json'], ['--verbose'], ['--json', '--verbose']]) {
      const result = await cli(['run', 'p.yaml', '--mode', 'local', ...flags], dir, SECRETS);
      expect(result.code, result.stderr + result.stdout).toBe(1);
      // The host is named as the host, not a piece of the password.
      expect(result.stdout + result.stderr).toContain(`${hostname}:${port}`);
      expect(result.stdout + result.stderr).toContain('REDIS_AUTH_FAILED');
      sweep(`run ${flags.join(' ')}`, result);
    }
  });

  it('problems that quote a secret are redacted in the human message and in --json problems[]', async () => {
    const dir = project({
      'p.yaml': [
        'name: secret-problems',
        'stages:',
        '  - { id: n, use: "${API_TOKEN}" }',
        '  - { id: o, use: printer, from: n, with: { format: "${FILE_PART}" } }',
        '',
      ].join('\n'),
    });
    for (const command of ['validate', 'run', 'graph']) {
      for (const flags of [[], ['--json'], ['--verbose']]) {
        const result = await cli([command, 'p.yaml', ...flags], dir, SECRETS);
        expect(result.code).toBe(2);
        sweep(`${command} ${flags.join(' ')}`, result);
        if (flags.includes('--json')) {
          const error = result.json()['error'] as { problems: { message: string }[] };
          expect(error.problems.length).toBeGreaterThan(0);
          expect(JSON.stringify(error.problems)).toContain('[REDACTED]');
        }
      }
    }
  });

  it('a runtime failure whose path holds a secret: the error, its log lines (both formats), --verbose', async () => {
    const dir = project({
      'p.yaml': [
        'name: secret-path',
        'stages:',
        '  - { id: in, use: ndjson-file, with: { path: "/nonexistent/${FILE_PART}.ndjson" } }',
        '  - { id: o, use: ndjson-file, from: in, with: { path: /dev/null } }',
        '',
      ].join('\n'),
    });
    for (const flags of [[], ['--json'], ['--verbose'], ['--json', '--verbose']]) {
      const result = await cli(['run', 'p.yaml', ...flags], dir, SECRETS);
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).toContain('[REDACTED]');
      sweep(`run ${flags.join(' ')}`, result);
    }
  });

  it('dead-letter reasons, the metrics endpoint and `codefeedr config` keep them hidden', async () => {
    const dir = project();
    const input = join(dir, `in-${SECRETS.FILE_PART}.ndjson`);
    writeFileSync(input, '{"n":1}\nnot json\n{"n":3}\n');
    writeFileSync(
      join(dir, 'p.yaml'),
      [
        'name: secret-run',
        'stages:',
        `  - { id: in, use: ndjson-file, with: { path: "${dir}/in-\${FILE_PART}.ndjson" } }`,
        '  - { id: seq, use: sequence, with: { ratePerSecond: 1000 } }',
        `  - { id: o, use: ndjson-file, from: in, with: { path: "${dir}/out.ndjson" } }`,
        '  - { id: o2, use: printer, from: seq, with: { prefix: "${API_TOKEN} " } }',
        '',
      ].join('\n'),
    );
    const child = spawnCli(['run', 'p.yaml', '--metrics-port', '0', '--verbose'], dir, {
      env: SECRETS,
    });
    const url = await waitFor(
      () => /metrics at (http:\/\/\S+)\/metrics/.exec(child.output.stderr)?.[1],
      {
        timeoutMs: 30_000,
      },
    );
    for (const path of ['/metrics', '/metrics.json']) {
      const text = await (await fetch(`${url}${path}`)).text();
      expect(text.length).toBeGreaterThan(0);
      expectNoSecret(`GET ${path}`, text);
    }
    child.kill('SIGINT');
    const { code } = await exited(child);
    expect(code, child.output.stderr).toBe(0);
    expect(child.output.stderr).toContain('dead letter(s) of stage "in"');
    expectNoSecret('run --verbose stderr (dead-letter reasons, debug logs)', child.output.stderr);
    // The printer's records are data, not logs: the prefix the user asked for is printed as is.
    expect(child.output.stdout).toContain(SECRETS.API_TOKEN);
    // The dead-letter file itself keeps the original line whole (it is data to replay).
    const letters = readFileSync(
      join(dir, '.codefeedr', 'dead-letters', 'secret-run', 'in.dlq.ndjson'),
      'utf8',
    );
    expect(letters).toContain('not json');

    for (const flags of [[], ['--json']]) {
      const config = await cli(['config', 'p.yaml', ...flags], dir, SECRETS);
      expect(config.code, config.stderr).toBe(0);
      expect(config.stdout).toContain('[REDACTED]');
      sweep(`config ${flags.join(' ')}`, config);
    }
  });
});
