import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CodefeedrError } from './errors.js';
import { runInline } from './inline-run.js';
import type { StageMetricsSnapshot } from './metrics.js';
import type { RunOptions } from './pipeline.js';
import type { PipelineDefinition, PipelineFactory } from './pipeline-builder.js';
import type { RuntimeContext } from './runtime-context.js';
import { mainDefinition, portSourceId, type SplitPlan } from './split-plan.js';
import { PortSource, type FromSplit, type SerializedError, type ToSplit } from './split-ports.js';
import type { InputStage, SplitShare } from './stage.js';

/** A worker thread of a split run failed; its error's message and code are kept. */
export class SplitWorkerError extends CodefeedrError {
  constructor(split: number, error: SerializedError) {
    super(error.code ?? 'SPLIT_FAILED', `Split ${split}: ${error.message}`, {
      split,
      error: error.name,
    });
    if (error.stack !== undefined) this.stack = `${this.name}: Split ${split}: ${error.stack}`;
  }
}

/** What a worker thread is started with. */
export interface SplitWorkerData {
  factory: PipelineFactory;
  split: SplitShare;
  /** pipelineShape() of the run's pipeline: the thread checks its factory built the same. */
  shape: string;
  options: Pick<
    RunOptions,
    | 'batchSize'
    | 'pollTimeoutMs'
    | 'tickIntervalMs'
    | 'ioRetries'
    | 'ioRetryBackoffMs'
    | 'stateDir'
    | 'checkpointIntervalMs'
  > & { stateBackend?: 'memory' | 'disk' };
  deadLetters: 'topic' | 'file';
  metricsEveryMs: number;
}

/** Stage ids, kinds and edges: what must be the same for two builds to be one pipeline. */
export function pipelineShape(def: PipelineDefinition): string {
  return JSON.stringify({
    stages: def.stages.map((s) => [s.id, s.kind]),
    edges: def.edges.map((e) => [e.from, e.output ?? null, e.to, e.inputIndex]),
    parallel: def.stages
      .filter((s) => def.stageOptions.get(s.id)?.parallel === true)
      .map((s) => s.id),
  });
}

/** The built worker entry: beside this file in dist; from the sources (tests), in dist. */
function workerEntry(): URL {
  const beside = new URL('./split-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL('../dist/split-worker.js', import.meta.url);
}

/**
 * A split run (RunOptions.splits): the parallel stages run in `splits` worker threads, each on
 * its share of the splittable inputs, with in-process edges as in any inline run; the other
 * stages run here, where each thread's records arrive through a port source of their own, so
 * every split is a channel and event time is the minimum over them. Dead letters, logs and
 * metrics of the threads come here too. No checkpoints: the threads and this thread have no
 * common batch boundary (Flink's barriers would give one), so a restart reads from the start.
 */
export async function runSplitInline(
  ctx: RuntimeContext,
  options: RunOptions,
  plan: SplitPlan,
): Promise<void> {
  const { def } = ctx;
  const { count } = plan;
  const sources: PortSource[][] = plan.ports.map(() => []);
  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  const lastStages: Map<string, StageMetricsSnapshot>[] = [];
  for (let split = 0; split < count; split++) {
    const worker = new Worker(workerEntry(), {
      workerData: workerData(ctx, options, split, count),
      // The thread's stdout/stderr are this process's: its logs come as messages.
      stdout: false,
      stderr: false,
    });
    workers.push(worker);
    lastStages.push(new Map());
    for (const [p] of plan.ports.entries()) {
      sources[p]![split] = new PortSource(() => {
        const ack: ToSplit = { t: 'ack', port: p };
        worker.postMessage(ack);
      }, ctx.pollTimeoutMs);
    }
    let finished = false;
    /** The thread is done (or failed): its port sources end once read. */
    const finish = (failure?: SerializedError): void => {
      finished = true;
      if (failure !== undefined) ctx.fail(new SplitWorkerError(split, failure));
      for (const perSplit of sources) perSplit[split]!.end();
    };
    worker.on('message', (message: FromSplit) => {
      if (message.t === 'batch') sources[message.port]![split]!.push(message.records);
      else if (message.t === 'dead-letters') storeDeadLetters(ctx, worker, message);
      else if (message.t === 'log') ctx.logger[message.level](message.message, message.fields);
      else if (message.t === 'metrics') addMetrics(ctx, lastStages, split, message.stages, plan);
      else if (message.t === 'done') {
        addMetrics(ctx, lastStages, split, message.stages, plan);
        finish();
      } else finish(message.error);
    });
    worker.on('error', (error) => finish({ name: error.name, message: error.message }));
    exited.push(
      new Promise<void>((resolve) =>
        worker.once('exit', (code) => {
          if (!finished && !ctx.signal.aborted)
            finish({
              name: 'Error',
              message: `its worker thread exited (code ${code}) before it finished`,
            });
          else finish();
          resolve();
        }),
      ),
    );
  }
  const stop = () => {
    for (const worker of workers) worker.postMessage({ t: 'stop' } satisfies ToSplit);
  };
  ctx.signal.addEventListener('abort', stop, { once: true });
  const main = mainDefinition(def, plan, (port, split): InputStage => ({
    kind: 'input',
    id: portSourceId(port, split),
    inputTypes: [],
    outputType: port.type,
    config: {},
    createSource: () => sources[port.index]![split]!,
  }));
  try {
    await runInline({ ...ctx, def: main });
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    // Failed here: the threads' work is of no use. Otherwise they have finished or are stopping.
    if (ctx.failed()) for (const worker of workers) void worker.terminate();
    else stop();
    await Promise.all(exited);
  }
}

function workerData(
  ctx: RuntimeContext,
  options: RunOptions,
  index: number,
  count: number,
): SplitWorkerData {
  const backend = options.stateBackend;
  return {
    factory: ctx.def.factory!,
    split: { index, count },
    shape: pipelineShape(ctx.def),
    options: {
      batchSize: ctx.batchSize,
      pollTimeoutMs: ctx.pollTimeoutMs,
      tickIntervalMs: ctx.tickIntervalMs,
      checkpointIntervalMs: ctx.checkpointIntervalMs,
      ...(options.ioRetries === undefined ? {} : { ioRetries: options.ioRetries }),
      ...(options.ioRetryBackoffMs === undefined
        ? {}
        : { ioRetryBackoffMs: options.ioRetryBackoffMs }),
      ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
      ...(backend === 'memory' || backend === 'disk' ? { stateBackend: backend } : {}),
    },
    deadLetters: ctx.deadLetters.kind,
    metricsEveryMs: 1000,
  };
}

function storeDeadLetters(
  ctx: RuntimeContext,
  worker: Worker,
  message: Extract<FromSplit, { t: 'dead-letters' }>,
): void {
  ctx.deadLetters.send(message.stageId, message.letters).then(
    () => worker.postMessage({ t: 'dead-letters-stored', id: message.id } satisfies ToSplit),
    (error: unknown) =>
      worker.postMessage({
        t: 'dead-letters-stored',
        id: message.id,
        error: { name: 'Error', message: (error as Error)?.message ?? String(error) },
      } satisfies ToSplit),
  );
}

/** A thread's counters of the parallel stages, added to this run's: each thread's change since its last report. */
function addMetrics(
  ctx: RuntimeContext,
  lastStages: readonly Map<string, StageMetricsSnapshot>[],
  split: number,
  stages: readonly StageMetricsSnapshot[],
  plan: SplitPlan,
): void {
  const last = lastStages[split]!;
  for (const now of stages) {
    if (!plan.parallel.has(now.stage)) continue; // port sinks: the thread edges, not stages
    const before = last.get(now.stage);
    last.set(now.stage, now);
    const m = ctx.metrics.stage(now.stage, now.kind);
    m.recordsIn += now.recordsIn - (before?.recordsIn ?? 0);
    m.recordsOut += now.recordsOut - (before?.recordsOut ?? 0);
    m.bytesIn += now.bytesIn - (before?.bytesIn ?? 0);
    m.bytesOut += now.bytesOut - (before?.bytesOut ?? 0);
    m.errors += now.errors - (before?.errors ?? 0);
    m.deadLettered += now.deadLettered - (before?.deadLettered ?? 0);
    m.batches += now.batches - (before?.batches ?? 0);
    m.backpressureMs += now.backpressureMs - (before?.backpressureMs ?? 0);
    // A parallel stage's watermark is the minimum over the splits that have one.
    let watermark: number | null = null;
    for (const perSplit of lastStages) {
      const w = perSplit.get(now.stage)?.watermark ?? null;
      if (w !== null) watermark = watermark === null ? w : Math.min(watermark, w);
    }
    m.watermark = watermark;
  }
}
