import { join } from 'node:path';
import type { JsonValue } from '@codefeedr/core';
import { waitFor } from './wait-for.js';
import { testkitWorkerDir, WorkerProcess, type WorkerEvent } from './worker-process.js';

/** One stage of the child's pipeline: a component, its stage id and its JSON config. */
export interface ChildStage {
  module: string;
  export: string;
  id: string;
  config: JsonValue;
}

/** What worker/pipeline-worker.mjs runs: input → output, inline, with a file checkpoint store. */
export interface PipelineChildSettings {
  pipeline: string;
  input: ChildStage;
  output: ChildStage;
  checkpointDir: string;
  checkpointIntervalMs: number;
  batchSize: number;
  /** Pause after each sink write, so a run lasts long enough to be killed mid-stream. */
  pauseMs: number;
}

export function startPipelineChild(settings: PipelineChildSettings): WorkerProcess {
  return new WorkerProcess({
    script: join(testkitWorkerDir(), 'pipeline-worker.mjs'),
    env: { ...process.env, CODEFEEDR_TESTKIT_PIPELINE: JSON.stringify(settings) },
  });
}

/** One life of the child. */
export interface ChildRun {
  worker: WorkerProcess;
  killed: boolean;
  /** Records written by this run up to the last checkpoint whose position is durable. */
  durableWritten: number;
}

export interface KillLoopOptions {
  /** Starts run number `run` (0-based); every run must resume from the same checkpoints. */
  start: (run: number) => WorkerProcess;
  kills: number;
  /** Largest kill threshold, in records written by one run. */
  maxThreshold: number;
  timeoutMs: number;
  /**
   * Unbounded inputs never finish: the last run is stopped (SIGTERM, a graceful stop) once
   * this holds. Bounded inputs leave it out and the last run must end by itself.
   */
  done?: () => Promise<boolean>;
}

const isEnd = (e: WorkerEvent): boolean => e.event === 'finished' || e.event === 'failed';

/**
 * Runs the child, SIGKILLs it `kills` times at random moments after random progress (each
 * restart resumes from the checkpoints), then lets the last run end. A run that fails, or
 * ends on its own before its kill, is reported through the returned runs.
 */
export async function killAndRestart(options: KillLoopOptions): Promise<ChildRun[]> {
  const runs: ChildRun[] = [];
  const deadline = Date.now() + options.timeoutMs;
  const remaining = (): number => Math.max(1_000, deadline - Date.now());
  let current: WorkerProcess | undefined;
  try {
    for (let kill = 0; kill < options.kills; kill++) {
      current = options.start(runs.length);
      const run: ChildRun = { worker: current, killed: false, durableWritten: 0 };
      runs.push(run);
      const threshold = 1 + Math.floor(Math.random() * options.maxThreshold);
      const event = await current.waitForEvent(
        (e) => (e.event === 'progress' && Number(e.written) >= threshold) || isEnd(e),
        remaining(),
        `${threshold} records written by run ${runs.length}`,
      );
      failOnFailure(current, event);
      if (event.event === 'finished') return finishRun(run, runs);
      // A random few ms after the progress, so the kill lands anywhere in write/flush/save/commit.
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 25)));
      current.kill('SIGKILL');
      const exit = await current.exited;
      run.killed = exit.signal === 'SIGKILL';
      run.durableWritten = durableWritten(current);
      if (!run.killed) {
        failOnFailure(current, current.events.find(isEnd));
        return finishRun(run, runs);
      }
    }
    current = options.start(runs.length);
    const last: ChildRun = { worker: current, killed: false, durableWritten: 0 };
    runs.push(last);
    if (options.done !== undefined) {
      const worker = current;
      await waitFor(
        async () => {
          if (!worker.running) throw new Error(`the last run exited early:\n${worker.tail()}`);
          return options.done!();
        },
        { timeoutMs: remaining(), intervalMs: 200, description: 'the last run to read everything' },
      );
      await worker.stop();
    }
    const end = await current.waitForEvent(isEnd, remaining(), 'the last run to end');
    failOnFailure(current, end);
    await current.exited;
    last.durableWritten = durableWritten(current);
    return runs;
  } finally {
    current?.kill('SIGKILL');
  }
}

async function finishRun(run: ChildRun, runs: ChildRun[]): Promise<ChildRun[]> {
  await run.worker.exited;
  run.durableWritten = durableWritten(run.worker);
  return runs;
}

function failOnFailure(worker: WorkerProcess, event: WorkerEvent | undefined): void {
  if (event?.event === 'failed') {
    throw new Error(`the pipeline child failed: ${String(event.error)}\n${worker.tail()}`);
  }
}

/**
 * Records of this run a restart will not read again: those covered by the last checkpoint
 * whose position is durable where the source resumes from it — the committed position for
 * sources with commit() (Kafka's group offsets), the saved checkpoint for the others.
 */
function durableWritten(worker: WorkerProcess): number {
  const commits = worker.events.find((e) => e.event === 'ready')?.commits === true;
  const marks = worker.events.filter((e) => e.event === (commits ? 'committed' : 'checkpoint'));
  return marks.length === 0 ? 0 : Number(marks[marks.length - 1]!.written);
}
