// The built `codefeedr` as a real child process: what only a process shows (signals, stdio
// redirected to a file or /dev/null, exit codes Node itself would pick). Build first:
// npx lerna run build --scope @codefeedr/cli --include-dependencies
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { closedPort, exited, project, spawnCli, spawnCliOnTerminal } from './cli-fixture.js';

const unbounded = [
  'name: forever',
  'stages:',
  '  - { id: numbers, use: sequence }',
  '  - { id: print, use: printer, from: numbers }',
  '',
].join('\n');
const inputOnly = ['name: lonely', 'stages:', '  - { id: numbers, use: sequence }', ''].join('\n');

/** Records the stages handled so far, read from the run's own metrics endpoint. */
async function recordsSoFar(url: string): Promise<number> {
  const response = await fetch(`${url}/metrics.json`);
  const snapshot = (await response.json()) as {
    stages: { recordsIn: number; recordsOut: number }[];
  };
  return snapshot.stages.reduce((sum, s) => sum + s.recordsOut, 0);
}

function metricsUrl(stderr: string): string | undefined {
  return /metrics at (http:\/\/\S+)\/metrics/.exec(stderr)?.[1];
}

describe('codefeedr run as a process', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} stops an unbounded sequence → printer redirected to a file: exit 0 and a summary`, async () => {
      const dir = project({ 'p.yaml': unbounded });
      const out = join(dir, 'out.txt');
      const child = spawnCli(['run', 'p.yaml'], dir, { stdout: out });
      // Progress: records reached the file.
      await waitFor(() => statSync(out).size > 100_000, { timeoutMs: 30_000 });
      const sent = Date.now();
      child.kill(signal);
      const { code, signal: killedBy, afterMs } = await exited(child, sent);
      expect(killedBy).toBeNull();
      expect(code, child.output.stderr).toBe(0);
      expect(afterMs).toBeLessThan(5_000);
      expect(child.output.stderr).toMatch(/■ stopped pipeline "forever" \(inline\)/);
      // Every record the summary counts as printed is in the file, one line each, in order.
      const printed = Number(/^print\s+output\s+(\d+)\s+(\d+)/m.exec(child.output.stderr)?.[2]);
      const lines = readFileSync(out, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      expect(lines.length).toBe(printed);
      expect(lines.slice(0, 3)).toEqual(['0', '1', '2']);
      expect(lines[lines.length - 1]).toBe(String(printed - 1));
    });
  }

  it('Ctrl-C on a terminal stops an unbounded sequence → printer: exit 0 and a summary', async () => {
    const dir = project({ 'p.yaml': unbounded });
    const child = spawnCliOnTerminal(['run', 'p.yaml'], dir);
    // Progress: records reached the terminal.
    await waitFor(() => child.output.bytes > 100_000, { timeoutMs: 30_000 });
    const sent = Date.now();
    child.stdin!.write('\x03');
    const { code, afterMs } = await exited(child, sent);
    expect(code, child.output.terminal).toBe(0);
    expect(afterMs).toBeLessThan(5_000);
    expect(child.output.terminal).toMatch(/■ stopped pipeline "forever" \(inline\)/);
    expect(child.output.terminal).toMatch(/^print\s+output\s+\d+\s+[1-9]\d*/m);
  });

  for (const [name, text] of [
    ['a printer to /dev/null', unbounded],
    ['a pipeline with only an input', inputOnly],
  ] as const) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      it(`${signal} stops ${name}: exit 0 within seconds`, async () => {
        const dir = project({ 'p.yaml': text });
        const child = spawnCli(['run', 'p.yaml', '--metrics-port', '0'], dir, {
          stdout: '/dev/null',
        });
        // Progress: the run's own metrics report records.
        await waitFor(
          async () => {
            const url = metricsUrl(child.output.stderr);
            return url !== undefined && (await recordsSoFar(url)) > 0;
          },
          { timeoutMs: 30_000 },
        );
        const sent = Date.now();
        child.kill(signal);
        const { code, signal: killedBy, afterMs } = await exited(child, sent);
        expect(killedBy).toBeNull();
        expect(code, child.output.stderr).toBe(0);
        expect(afterMs).toBeLessThan(5_000);
        expect(child.output.stderr).toMatch(/■ stopped pipeline/);
        expect(child.output.stderr).toMatch(/^numbers\s+input\s+\d+\s+[1-9]\d*/m);
      });
    }
  }

  it('a plugin whose top-level await never settles: one clear error, exit 2 (not Node exit 13)', async () => {
    const dir = project({
      'node_modules/codefeedr-plugin-stuck/package.json': JSON.stringify({
        name: 'codefeedr-plugin-stuck',
        version: '1.0.0',
        type: 'module',
        main: 'index.js',
        keywords: ['codefeedr-plugin'],
        codefeedr: {
          apiVersion: 1,
          components: [
            {
              name: 'stuck',
              kind: 'input',
              export: 'stuck',
              description: 'Never loads.',
              configSchema: { type: 'object' },
              outputType: 'any@1',
            },
          ],
        },
      }),
      'node_modules/codefeedr-plugin-stuck/index.js':
        'await new Promise(() => {});\nexport const stuck = {};\n',
      'p.yaml':
        'name: s\nstages:\n  - { id: s, use: stuck }\n  - { id: p, use: printer, from: s }\n',
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { 'codefeedr-plugin-stuck': '1.0.0' } }),
    );
    const child = spawnCli(['run', 'p.yaml'], dir);
    const { code } = await exited(child);
    expect(code, child.output.stderr).toBe(2);
    expect(child.output.stderr).toContain('[PLUGIN_LOAD_FAILED]');
    expect(child.output.stderr).toContain('never finished: a top-level `await`');
    expect(child.output.stderr).not.toContain('Warning');
  });

  it('new plugin --dir under /proc fails at once instead of spinning', async () => {
    const dir = project();
    const started = Date.now();
    const child = spawnCli(['new', 'plugin', 'x', '--dir', '/proc/codefeedr-x'], dir);
    const { code, afterMs } = await exited(child, started);
    expect(code, child.output.stderr).toBe(2);
    expect(afterMs).toBeLessThan(10_000);
    expect(child.output.stderr).toContain('[SCAFFOLD_TARGET_UNWRITABLE]');
  });

  it('an unreachable Kafka buffer or stage: one error naming it and the address at once, exit 1, no client log lines', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    const pipelines: [string, string, string, string[]][] = [
      [
        'buffer',
        [
          'name: k',
          `buffer: { use: '@codefeedr/plugin-kafka:kafka', with: { brokers: ['${address}'] } }`,
          'stages:',
          '  - { id: n, use: sequence, with: { to: 3 } }',
          '  - { id: o, use: ndjson-file, from: n, with: { path: out.ndjson } }',
          '',
        ].join('\n'),
        'for the Kafka buffer',
        ['--mode', 'local'],
      ],
      [
        'input stage',
        [
          'name: k',
          'stages:',
          `  - { id: events, use: '@codefeedr/plugin-kafka:kafka-input', with: { brokers: ['${address}'], topic: t } }`,
          '  - { id: o, use: ndjson-file, from: events, with: { path: out.ndjson } }',
          '',
        ].join('\n'),
        'for stage "events" (kafka-input)',
        [],
      ],
    ];
    for (const [what, text, owner, flags] of pipelines) {
      const dir = project({ 'p.yaml': text });
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-kafka': '*' } }),
      );
      const started = Date.now();
      const child = spawnCli(['run', 'p.yaml', ...flags], dir);
      const { code, afterMs } = await exited(child, started);
      const stderr = child.output.stderr;
      expect(code, stderr).toBe(1);
      // Before: kafkajs's own retries (10-16 s) and a dozen of its log lines first.
      expect(afterMs, what).toBeLessThan(5_000);
      const lines = stderr.split('\n').filter((l) => l !== '');
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^error Could not connect to Kafka at /);
      expect(lines[0]).toContain(`${address} ${owner}: nothing accepts connections there`);
      expect(lines[0]).toMatch(/\[KAFKA_UNAVAILABLE\]$/);
    }

    // From ${KAFKA_BROKERS} the address is a secret like every ${VAR} value: hidden wherever
    // it would show, never printed in one line and hidden in another.
    const dir = project({
      'p.yaml': pipelines[0]![1].replace(`'${address}'`, "'${KAFKA_BROKERS}'"),
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-kafka': '*' } }),
    );
    for (const flags of [[], ['--json'], ['--verbose']]) {
      const child = spawnCli(['run', 'p.yaml', '--mode', 'local', ...flags], dir, {
        env: { KAFKA_BROKERS: address },
      });
      const { code } = await exited(child);
      const output = child.output.stdout + child.output.stderr;
      expect(code, output).toBe(1);
      expect(output).toContain('Could not connect to Kafka at [REDACTED] for the Kafka buffer');
      expect(output).not.toContain(address);
    }
  });
});
