// The `codefeedr` command starts node with core's PIPELINE_V8_FLAGS through its shebang (the
// kernel runs `env -S node <flags> bin/codefeedr.js`), which is how npm-installed commands,
// `npx codefeedr` and the deploy targets' units run it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PIPELINE_V8_FLAGS } from '@codefeedr/core';
import { waitFor } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { exited, project } from './cli-fixture.js';
import { CLI_DIR } from './cli-package.js';

const bin = join(CLI_DIR, 'bin', 'codefeedr.js');

describe('the codefeedr command', () => {
  it('names PIPELINE_V8_FLAGS in its shebang', () => {
    const shebang = readFileSync(bin, 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${PIPELINE_V8_FLAGS.join(' ')}`);
  });

  it('runs a pipeline in a node started with those flags when executed as a file', async () => {
    expect(existsSync(join(CLI_DIR, 'dist', 'bin.js'))).toBe(true);
    const dir = project({
      'p.yaml': [
        'name: flags',
        'stages:',
        '  - { id: numbers, use: sequence }',
        '  - { id: print, use: printer, from: numbers }',
        '',
      ].join('\n'),
    });
    // The file itself, not `node bin/codefeedr.js`: the kernel reads the shebang.
    const child = spawn(bin, ['run', 'p.yaml'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let printed = 0;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (printed += chunk.length));
    try {
      // Records printed: the run is under way (and env has exec'd node in its own place).
      await waitFor(() => printed > 0, {
        timeoutMs: 30_000,
        description: 'the pipeline to print',
      });
      const args = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      expect(args[0]).toMatch(/node$/);
      expect(args.slice(1, 1 + PIPELINE_V8_FLAGS.length)).toEqual([...PIPELINE_V8_FLAGS]);
    } finally {
      child.kill('SIGTERM');
    }
    expect((await exited(child)).code).toBe(0);
    expect(stderr).toContain('stopped pipeline "flags"');
  }, 60_000);
});
