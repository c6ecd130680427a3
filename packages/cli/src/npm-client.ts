import { spawn } from 'node:child_process';
import { NpmCommandError } from './cli-errors.js';

export interface NpmRunOptions {
  cwd: string;
  env: Record<string, string | undefined>;
  /** Stream npm's own output here as it runs (human mode); captured either way. */
  echo?: { write(text: string): unknown } | undefined;
}

/**
 * Runs the npm on PATH (the user's own, with their registry and auth config) and resolves
 * with its stdout; a non-zero exit becomes an NpmCommandError with the tail of its output.
 */
export function runNpm(args: readonly string[], options: NpmRunOptions): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('npm', [...args], {
      cwd: options.cwd,
      env: options.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let all = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      all += chunk.toString();
      options.echo?.write(chunk.toString());
    });
    child.stderr.on('data', (chunk: Buffer) => {
      all += chunk.toString();
      options.echo?.write(chunk.toString());
    });
    child.on('error', (error) =>
      reject(new NpmCommandError(args, null, `npm could not be started: ${error.message}`)),
    );
    child.on('close', (code) => {
      if (code === 0) resolvePromise(stdout);
      else reject(new NpmCommandError(args, code, all));
    });
  });
}

/** The registry npm would use in `cwd` (its .npmrc, userconfig and environment honoured). */
export async function npmRegistry(
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<string> {
  const registry = (await runNpm(['config', 'get', 'registry'], { cwd, env })).trim();
  return registry || 'https://registry.npmjs.org/';
}
