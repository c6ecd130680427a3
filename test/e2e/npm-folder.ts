// Spawning the real npm/npx/codefeedr for end-to-end flows: Node 24 from the repo first on
// PATH, npm's config from the folder's own .npmrc (never ~/.npmrc), a cache under .cache/.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { npmChildEnv } from '../services/verdaccio.ts';

export const REPO = resolve(import.meta.dirname, '..', '..');
const NODE_BIN = join(REPO, 'node_modules', '.bin');
const NPM_CACHE = join(REPO, '.cache', 'e2e-npm-cache');

export interface CommandResult {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment for npm in a folder whose .npmrc is `npmrc`. */
export function npmEnv(npmrc: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  mkdirSync(NPM_CACHE, { recursive: true });
  return {
    ...npmChildEnv(),
    PATH: `${NODE_BIN}:${process.env['PATH'] ?? ''}`,
    npm_config_userconfig: npmrc,
    npm_config_cache: NPM_CACHE,
    npm_config_update_notifier: 'false',
    NO_COLOR: '1',
    NX_DAEMON: 'false',
    ...extra,
  };
}

/** Runs a command to completion; never throws on a non-zero exit (tests assert on it). */
export function runCommand(
  file: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, [...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${file} could not be started: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ command: `${file} ${args.join(' ')}`, code, stdout, stderr });
    });
  });
}

/** Throws with the command's output when it failed, so a failing step says why. */
export function assertSucceeded(result: CommandResult): CommandResult {
  if (result.code !== 0) {
    throw new Error(
      `\`${result.command}\` exited ${result.code}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`,
    );
  }
  return result;
}
