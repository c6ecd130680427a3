// `codefeedr run --stage` over a shared buffer (real Redis): the worker mode the memory
// buffer now refuses, working as the refusal tells users to set it up.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { cli, exited, project, spawnCli } from './cli-fixture.js';

const redisUrl = () => {
  const url = process.env['CODEFEEDR_REDIS_URL'];
  if (!url) throw new Error('CODEFEEDR_REDIS_URL is not set: run through vitest (global setup)');
  return url;
};

describe('codefeedr run --stage', () => {
  it('workers of each stage over a Redis buffer move every record; the reader ends with the producer’s stream', async () => {
    const dir = project();
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-redis': '*' } }),
    );
    const prefix = `cli-worker-${Date.now()}-${process.pid}`;
    const out = join(dir, 'out.ndjson');
    const to = 250;
    writeFileSync(
      join(dir, 'p.yaml'),
      [
        'name: workers',
        `buffer: { use: '@codefeedr/plugin-redis:redis', with: { url: '${redisUrl()}', prefix: ${prefix} } }`,
        'stages:',
        `  - { id: numbers, use: sequence, with: { to: ${to} } }`,
        `  - { id: out, use: ndjson-file, from: numbers, with: { path: "${out}" } }`,
        '',
      ].join('\n'),
    );
    const reader = spawnCli(['run', 'p.yaml', '--stage', 'out'], dir);
    const producer = await cli(['run', 'p.yaml', '--stage', 'numbers'], dir);
    expect(producer.code, producer.stderr).toBe(0);
    // sequence emits from..to inclusive (from defaults to 0).
    const expected = Array.from({ length: to + 1 }, (_, n) => String(n));
    await waitFor(
      () =>
        existsSync(out) &&
        readFileSync(out, 'utf8')
          .split('\n')
          .filter((l) => l !== '').length >= expected.length,
      { timeoutMs: 30_000, description: 'the out worker to write every record' },
    );
    // The producer's end of stream reaches the reader through the buffer: it ends on its own.
    const { code } = await exited(reader);
    expect(code, reader.output.stderr).toBe(0);
    const written = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    expect([...written].sort((a, b) => Number(a) - Number(b))).toEqual(expected);
    expect(reader.output.stderr).toMatch(/✓ finished pipeline "workers" \(worker\)/);
  });
});
