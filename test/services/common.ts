// Shared plumbing for the real-services harness: paths, child processes, pid files,
// cross-process locks, apt installs, readiness polling and log tails.
// Runs directly on Node 24 (type stripping), so only erasable TypeScript syntax here.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export type ServiceState = 'up' | 'down';

/** What every service file (kafka.ts, redis.ts, ...) exports. */
export interface Service {
  readonly name: string;
  /** Connection string a client uses (host:port for Kafka). */
  readonly url: string;
  /** Installs/builds what the server needs if it is missing (apt, mvn, go build). */
  install(): Promise<void>;
  /** Idempotent: returns quickly when the server already answers its probe. */
  start(): Promise<void>;
  /** Stops the server and verifies its process is gone. */
  stop(): Promise<void>;
  /** 'up' only when our pid is alive AND the server answers a protocol-level probe. */
  status(): Promise<ServiceState>;
}

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SERVICES_DIR = join(ROOT, '.services');
export const CACHE_DIR = join(ROOT, '.cache');

/** .services/<name>/, created on demand: logs, data, pid files of one service. */
export function serviceDir(name: string): string {
  const dir = join(SERVICES_DIR, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function cacheDir(name: string): string {
  const dir = join(CACHE_DIR, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------
// Commands

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command to completion; rejects with its combined output when it fails. */
export function run(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${file} could not be started: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(output);
      else
        reject(
          new Error(
            `${file} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}):\n${lastLines(output, 40)}`,
          ),
        );
    });
  });
}

/** True when `name` resolves to an executable on PATH. */
export function commandExists(name: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').filter((d) => d !== '');
  return dirs.some((dir) => existsSync(join(dir, name)));
}

// ---------------------------------------------------------------------------------
// Processes

/** Alive means present in /proc and not a zombie (an unreaped child is already dead). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Format: "pid (comm) S ..."; comm may contain spaces, so read after the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The process's arguments joined by spaces (servers that rewrite their title pad with NULs). */
export function processCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((arg) => arg !== '')
      .join(' ');
  } catch {
    return '';
  }
}

/**
 * The pid in `file` if that process is alive and its command line contains `marker`.
 * The marker guards against pid reuse: a stale pid file must never make us signal a
 * process that is not ours.
 */
export function livePid(file: string, marker: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').trim().split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (!isAlive(pid)) return undefined;
  // The marker must end at an argument boundary: "-p 5433" must not match "-p 54330".
  return `${processCmdline(pid)} `.includes(`${marker} `) ? pid : undefined;
}

export interface SpawnSpec {
  file: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a long-running server in its own process group (detached = setsid), with
 * stdout and stderr appended to `logFile`, and returns its pid. The parent does not
 * keep it alive and does not hold pipes to it, so the CLI and vitest can exit while
 * the server keeps running.
 */
export function spawnDetached(spec: SpawnSpec, logFile: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(spec.file, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${spec.file}`);
    // 'error' would otherwise be an unhandled event; the readiness wait reports the failure.
    child.on('error', () => undefined);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

function signalGroupOrProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // the whole group: servers may fork helpers
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Waits (polling /proc) until `pid` is gone; true if it went within `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await delay(100);
  }
  return true;
}

/**
 * SIGTERM to the process group, then SIGKILL after `graceMs`; throws if the process
 * still exists afterwards, so `down` never silently leaves a server behind.
 */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  signalGroupOrProcess(pid, 'SIGTERM');
  if (await waitForExit(pid, graceMs)) return;
  signalGroupOrProcess(pid, 'SIGKILL');
  if (await waitForExit(pid, 10_000)) return;
  throw new Error(`process ${pid} (${processCmdline(pid)}) survived SIGKILL`);
}

// ---------------------------------------------------------------------------------
// Locks

/**
 * Cross-process mutual exclusion per service: several engineers' vitest runs and CLI
 * calls may bring services up at the same time on this machine; without a lock two of
 * them would both see "down" and race for the same port. The lock is a file created
 * with O_EXCL holding the owner's pid; a lock whose owner died is taken over.
 */
export async function withLock<T>(
  name: string,
  action: () => Promise<T>,
  timeoutMs = 15 * 60_000,
): Promise<T> {
  mkdirSync(SERVICES_DIR, { recursive: true });
  const file = join(SERVICES_DIR, `${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  let emptySince: number | undefined;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(readFileOr(file, ''), 10);
    // An empty lock file is normally an owner between create and write; only after a
    // while is it treated as left behind by a crash.
    if (Number.isInteger(owner)) emptySince = undefined;
    else emptySince ??= Date.now();
    const stale = Number.isInteger(owner)
      ? !isAlive(owner)
      : Date.now() - (emptySince ?? 0) > 2_000;
    if (stale) {
      // Move it aside (atomic rename) rather than unlink, so that of several waiters
      // only one removes it. A waiter that judged it stale a moment too late could
      // still move a fresh lock; that window is a few microseconds and acceptable here.
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
        unlinkSync(aside);
      } catch {
        // another waiter took it over first
      }
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for lock ${file} held by pid ${String(owner)}`);
    await delay(200);
  }
  try {
    return await action();
  } finally {
    try {
      unlinkSync(file);
    } catch {
      // removed already
    }
  }
}

function readFileOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

// ---------------------------------------------------------------------------------
// apt

let aptQueue: Promise<void> = Promise.resolve();
let aptUpdated = false;

/**
 * Installs Debian packages unless `isInstalled()` already holds. Calls are queued in
 * this process and serialised across processes with flock, and `apt-get update` runs
 * once per process before the first install.
 */
export function aptInstall(packages: readonly string[], isInstalled: () => boolean): Promise<void> {
  const next = aptQueue.then(async () => {
    if (isInstalled()) return;
    if (process.getuid?.() !== 0) {
      throw new Error(
        `${packages.join(' ')} missing and not running as root: apt-get install -y ${packages.join(' ')}`,
      );
    }
    const lock = join(cacheDir('apt'), 'apt.lock');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (!aptUpdated) {
      await run('flock', [lock, 'apt-get', 'update', '-q'], { env });
      aptUpdated = true;
    }
    await run(
      'flock',
      [lock, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages],
      { env },
    );
    if (!isInstalled())
      throw new Error(`apt-get installed ${packages.join(' ')} but the check still fails`);
  });
  // Keep the queue going after a failure; the caller still sees the rejection.
  aptQueue = next.catch(() => undefined);
  return next;
}

// ---------------------------------------------------------------------------------
// Readiness and errors

export function lastLines(text: string, count: number): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-count).join('\n');
}

/** Written into a service's log before each start, so a failure shows only this attempt. */
export const START_MARKER = '=== starting';

/**
 * The last `count` lines of each existing log file, labelled, for error messages; in a
 * file that has start markers, only lines from the latest attempt on.
 */
export function logTail(files: readonly string[], count = 40): string {
  const parts: string[] = [];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const attempt = text.lastIndexOf(`\n${START_MARKER}`);
    parts.push(
      `--- last ${count} lines of ${file} ---\n${lastLines(attempt >= 0 ? text.slice(attempt + 1) : text, count)}`,
    );
  }
  return parts.length > 0 ? parts.join('\n') : `(no log at ${files.join(', ')})`;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Lets the wait fail fast when the server process has already exited. */
  isDead?: () => boolean;
}

/**
 * Polls a real protocol probe (a client connection/command) until it succeeds. The
 * short pause between attempts only spaces out probes; readiness is never assumed
 * from elapsed time.
 */
export async function waitUntilReady(
  what: string,
  probe: () => Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (options.isDead?.() === true) throw new Error(`${what} exited during startup`);
    if (Date.now() > deadline)
      throw new Error(
        `${what} did not answer its readiness probe within ${options.timeoutMs / 1000} s`,
      );
    await delay(200);
  }
}

/** Runs `probe` and maps any error to false: a refused connection just means "not ready". */
export async function probeSafely(probe: () => Promise<boolean>): Promise<boolean> {
  try {
    return await probe();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------
// A server that is one long-running process we spawn ourselves

export interface ProcessServiceSpec {
  name: string;
  /** Where its pid file and stdout/stderr log live; default .services/<name>. */
  dir?: string;
  url: string;
  /** Part of /proc/<pid>/cmdline that identifies our process (see livePid); stop() uses it. */
  cmdlineMarker: string;
  /**
   * Part of the command line that shows it runs with the current settings (its port).
   * Without it, status() would call a process of ours on an old port "up" when some other
   * server answers on the new port; start() then replaces the old process.
   */
  settingsMarker?: string;
  install(): Promise<void>;
  /** Per-start preparation: write configs, create/format data directories. */
  prepare?(): Promise<void>;
  command(): SpawnSpec;
  probe(): Promise<boolean>;
  startTimeoutMs: number;
  stopGraceMs: number;
  /** Additional log files to show on failure (the process's stdout/stderr log is always shown). */
  extraLogs?: string[];
}

export interface ProcessService extends Service {
  readonly pidFile: string;
  readonly logFile: string;
}

/** Implements Service for a server that runs as a single spawned process plus a pid file. */
export function processService(spec: ProcessServiceSpec): ProcessService {
  const dir = spec.dir ?? serviceDir(spec.name);
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, `${spec.name}.pid`);
  const logFile = join(dir, `${spec.name}.log`);
  const logs = [logFile, ...(spec.extraLogs ?? [])];

  const status = async (): Promise<ServiceState> => {
    const pid = livePid(pidFile, spec.cmdlineMarker);
    if (pid === undefined) return 'down';
    if (spec.settingsMarker !== undefined && livePid(pidFile, spec.settingsMarker) !== pid)
      return 'down';
    return (await probeSafely(spec.probe)) ? 'up' : 'down';
  };

  const stopUnlocked = async (): Promise<void> => {
    const pid = livePid(pidFile, spec.cmdlineMarker);
    if (pid !== undefined) await terminate(pid, spec.stopGraceMs);
    if (existsSync(pidFile)) unlinkSync(pidFile);
  };

  return {
    name: spec.name,
    url: spec.url,
    pidFile,
    logFile,
    install: spec.install,
    status,
    start: () =>
      withLock(spec.name, async () => {
        if ((await status()) === 'up') return;
        // A process of ours that is alive but does not answer is wedged: replace it.
        await stopUnlocked();
        await spec.install();
        await spec.prepare?.();
        writeFileSync(logFile, `${START_MARKER} ${spec.name} at ${new Date().toISOString()}\n`, {
          flag: 'a',
        });
        const pid = spawnDetached(spec.command(), logFile);
        writeFileSync(pidFile, `${pid}\n`);
        try {
          await waitUntilReady(spec.name, () => probeSafely(spec.probe), {
            timeoutMs: spec.startTimeoutMs,
            isDead: () => !isAlive(pid),
          });
        } catch (error) {
          await stopUnlocked().catch(() => undefined);
          throw new Error(
            `${spec.name} failed to start: ${(error as Error).message}\n${logTail(logs)}`,
            {
              cause: error,
            },
          );
        }
      }),
    stop: () => withLock(spec.name, stopUnlocked),
  };
}
