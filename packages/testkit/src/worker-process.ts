import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The folder of the testkit's plain-JavaScript child drivers (shipped beside dist/). */
export function testkitWorkerDir(): string {
  // CJS builds have __dirname; ESM (and vitest on the sources) have import.meta.url.
  const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  return join(here, '..', 'worker');
}

/**
 * Node options that let a child process run TypeScript sources: Node 24 strips types
 * itself (transform mode, so enums and parameter properties work too), and the testkit's
 * resolve hooks map NodeNext `./x.js` imports to `./x.ts` and workspace packages to their
 * `src/index.ts`. Run the child with `process.execPath` (Node 24 under vitest).
 */
export function typescriptNodeOptions(): string[] {
  return [
    '--experimental-transform-types',
    '--disable-warning=ExperimentalWarning',
    '--import',
    pathToFileURL(join(testkitWorkerDir(), 'register-typescript.mjs')).href,
  ];
}

export interface WorkerProcessOptions {
  /** Script to run: a .mjs/.js/.ts file path. */
  script: string;
  args?: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** One JSON object per stdout line, as the testkit's drivers write them. */
export type WorkerEvent = Record<string, unknown> & { event?: string };

/**
 * A Node child process that reports progress as JSON lines on stdout. Keeps every event,
 * lets a test wait for one with a deadline, and kills it with any signal (SIGKILL for
 * crash tests). Non-JSON stdout lines and stderr are kept for error messages.
 */
export class WorkerProcess {
  readonly events: WorkerEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private output = '';
  private partial = '';
  private listeners = new Set<() => void>();
  private exitState: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(options: WorkerProcessOptions) {
    this.child = spawn(
      process.execPath,
      [...typescriptNodeOptions(), options.script, ...(options.args ?? [])],
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.keep(chunk));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (error) => this.keep(`spawn failed: ${error.message}\n`));
      this.child.on('close', (code, signal) => {
        this.exitState = { code, signal };
        this.notify();
        resolve(this.exitState);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitState === undefined;
  }

  /** The last lines the child wrote (stdout and stderr), for failure messages. */
  tail(lines = 30): string {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  /** Resolves with the first event (already seen or future) matching `predicate`. */
  waitForEvent(
    predicate: (event: WorkerEvent) => boolean,
    timeoutMs: number,
    description = 'event',
  ): Promise<WorkerEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(predicate);
        if (found !== undefined) {
          finish();
          resolve(found);
          return true;
        }
        if (this.exitState !== undefined) {
          finish();
          reject(
            new Error(
              `worker exited (${this.exitState.signal ?? `code ${this.exitState.code}`}) before ${description}:\n${this.tail()}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${description} from the worker:\n${this.tail()}`,
          ),
        );
      }, timeoutMs);
      const listener = (): void => void check();
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
      check();
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private onStdout(chunk: string): void {
    this.partial += chunk;
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('{')) {
        try {
          this.events.push(JSON.parse(line) as WorkerEvent);
          continue;
        } catch {
          // not an event: keep it as output
        }
      }
      this.keep(`${line}\n`);
    }
    this.notify();
  }

  private keep(text: string): void {
    this.output = (this.output + text).slice(-20_000);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
