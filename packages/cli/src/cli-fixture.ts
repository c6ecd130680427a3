// Test support (not exported): throwaway projects, the CLI called in-process, and the built
// CLI spawned as a real child process (signals, exit codes Node itself decides, stdio redirects).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { CLI_DIR } from './cli-package.js';
import { main } from './program.js';

export const REPO = join(CLI_DIR, '..', '..');
const TMP = join(REPO, '.tmp');

/** A project folder under `<repo>/.tmp` (so `@codefeedr/core` resolves as in an install) with `files`. */
export function project(files: Record<string, string> = {}, name = 'cli-'): string {
  mkdirSync(TMP, { recursive: true });
  const dir = mkdtempSync(join(TMP, name));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'cli-fixture', version: '1.0.0' }),
  );
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json(): Record<string, unknown>;
}

/** `codefeedr <args>` in-process (program.main), stdout and stderr captured. */
export async function cli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

/** No stack frames, exactly one `error` line with `[code]`. */
export function expectOneError(stderr: string, code: string): void {
  expect(stderr.split('\n').filter((l) => l.startsWith('error '))).toHaveLength(1);
  expect(stderr).toContain(`[${code}]`);
  expect(stderr).not.toMatch(/^\s+at /m);
}

function builtBin(): string {
  if (!existsSync(join(CLI_DIR, 'dist', 'bin.js')))
    throw new Error(
      'packages/cli is not built: run `npx lerna run build --scope @codefeedr/cli --include-dependencies`',
    );
  return join(CLI_DIR, 'bin', 'codefeedr.js');
}

/** The built CLI as a child process; stdout to a pipe, a file, or /dev/null. */
export function spawnCli(
  args: string[],
  cwd: string,
  options: { stdout?: 'pipe' | string; env?: Record<string, string> } = {},
): ChildProcess & { output: { stdout: string; stderr: string } } {
  const out = options.stdout ?? 'pipe';
  const child = spawn(process.execPath, [builtBin(), ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', out === 'pipe' ? 'pipe' : openSync(out, 'w'), 'pipe'],
  }) as ChildProcess & { output: { stdout: string; stderr: string } };
  child.output = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => (child.output.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (child.output.stderr += chunk.toString()));
  return child;
}

/**
 * The built CLI on a terminal: script(1) runs it on a new pty, so its stdout and stderr are a
 * TTY and a Ctrl-C written to `stdin` reaches it as a terminal's SIGINT (the line discipline
 * sends it). `output.terminal` keeps the last 64 KiB the terminal showed, `output.bytes` counts all.
 */
export function spawnCliOnTerminal(
  args: string[],
  cwd: string,
): ChildProcess & { output: { terminal: string; bytes: number } } {
  const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
  // `exec`: the CLI replaces script's shell. Without it, a shell that does not exec a lone command
  // (dash, /bin/sh on Debian, used when SHELL is unset) also gets the terminal's SIGINT and dies of
  // it, and script reports 130 although the CLI exited 0.
  const command = `exec ${[process.execPath, builtBin(), ...args].map(quote).join(' ')}`;
  // -e: script exits with the CLI's exit code; -f: output is passed on at once.
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', SHELL: '/bin/sh' },
    stdio: ['pipe', 'pipe', 'inherit'],
  }) as ChildProcess & { output: { terminal: string; bytes: number } };
  child.output = { terminal: '', bytes: 0 };
  child.stdout!.on('data', (chunk: Buffer) => {
    child.output.bytes += chunk.length;
    child.output.terminal = (child.output.terminal + chunk.toString()).slice(-65_536);
  });
  return child;
}

/** Resolves with the exit code (or the signal's name) and how long after `since` it came. */
export function exited(
  child: ChildProcess,
  since = Date.now(),
): Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, afterMs: Date.now() - since });
      return;
    }
    child.once('close', (code, signal) => resolve({ code, signal, afterMs: Date.now() - since }));
  });
}

/** A loopback port nothing listens on: bound by a server that is closed again at once. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
