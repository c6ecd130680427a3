import { randomUUID } from 'node:crypto';
import type { Buffer } from './buffer.js';
import { FileCheckpointStore, type CheckpointStore } from './checkpoint-store.js';
import { compileTransform } from './compile-transform.js';
import { ConsoleLogger } from './console-logger.js';
import { DeadLetterQueue } from './dead-letter.js';
import type { Logger } from './logger.js';
import { MemoryBuffer } from './memory-buffer.js';
import { PipelineMetrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { registeredTransformCompiler, type CompileTransform } from './operator-chain.js';
import type { RunMode, RunOptions, RunSummary } from './pipeline.js';
import type { PipelineDefinition, StageOptions } from './pipeline-builder.js';
import { runInline } from './runtime-inline.js';
import { RunOptionsError, UnknownWorkerStageError, type RetryPolicy } from './runtime-support.js';
import type { Serde } from './serde.js';
import { getSerde } from './serde-registry.js';
import type { AnyStage, StageContext } from './stage.js';
import { runStageWorkers } from './stage-worker.js';

/** Everything an executor needs, resolved once per run. */
export interface RuntimeContext {
  readonly def: PipelineDefinition;
  readonly mode: RunMode;
  readonly instance: string;
  /** Unique per run (end-of-stream markers carry it). */
  readonly runId: string;
  readonly logger: Logger;
  readonly buffer: Buffer;
  readonly store: CheckpointStore | undefined;
  readonly compile: CompileTransform;
  readonly metrics: PipelineMetrics;
  /** Aborted on a graceful stop or a failure. */
  readonly signal: AbortSignal;
  readonly batchSize: number;
  readonly pollTimeoutMs: number;
  readonly tickIntervalMs: number;
  readonly checkpointIntervalMs: number;
  retryPolicy(): RetryPolicy;
  /** Records the first failure and stops every unit of the run. */
  fail(error: unknown): void;
  /** True once something failed (as opposed to a graceful stop). */
  failed(): boolean;
  stageOptions(stageId: string): StageOptions;
  topicOf(stageId: string): string;
  groupOf(stageId: string): string;
  serdeOf(stageId: string): Serde;
  stageContext(stage: AnyStage): StageContext;
  deadLetterQueue(stage: AnyStage): DeadLetterQueue;
}

export interface RunHandle {
  readonly metrics: PipelineMetrics;
  readonly done: Promise<RunSummary>;
}

export function runPipeline(def: PipelineDefinition, options: RunOptions): RunHandle {
  const mode = options.mode ?? 'inline';
  const metrics = new PipelineMetrics(def.name, mode);
  const started = Date.now();
  const done = (async (): Promise<RunSummary> => {
    const stages = def.stages.map((s) => s.id);
    if (!['inline', 'local', 'worker'].includes(mode)) {
      throw new RunOptionsError(
        `Unknown run mode "${String(mode)}". Use 'inline', 'local' or 'worker'.`,
        {
          mode,
        },
      );
    }
    if (mode === 'worker' && (options.stage === undefined || !stages.includes(options.stage))) {
      throw new UnknownWorkerStageError(options.stage, stages);
    }
    for (const stage of def.stages) {
      if (mode !== 'worker' || stage.id === options.stage) metrics.stage(stage.id, stage.kind);
    }
    // Serde names are checked before anything starts, so a typo fails fast with the known names.
    for (const stage of def.stages) getSerde(def.stageOptions.get(stage.id)?.serde ?? 'json');

    const stop = new AbortController();
    let failure: { error: unknown } | undefined;
    let stoppedByUser = false;
    const onStop = () => {
      stoppedByUser = true;
      stop.abort();
    };
    if (options.signal?.aborted) onStop();
    options.signal?.addEventListener('abort', onStop, { once: true });
    if (options.handleSignals) {
      process.once('SIGINT', onStop);
      process.once('SIGTERM', onStop);
    }
    const logger = options.logger ?? new ConsoleLogger({ fields: { pipeline: def.name } });

    let buffer: Buffer;
    let ownsBuffer = true;
    if (def.buffer === undefined) buffer = new MemoryBuffer();
    else if ('instance' in def.buffer) {
      buffer = def.buffer.instance;
      ownsBuffer = false;
    } else buffer = await def.buffer.component.create(def.buffer.config as never);

    let server: MetricsServer | undefined;
    try {
      if (options.metricsPort !== undefined) {
        server = await startMetricsServer(
          () => metrics.snapshot(),
          options.metricsPort,
          options.metricsHost,
        );
        logger.info('metrics endpoint listening', { url: `${server.url}/metrics` });
        options.onMetricsListening?.(server.url);
      }
      const retries = options.ioRetries ?? 3;
      const backoffMs = options.ioRetryBackoffMs ?? 100;
      const stageOptions = (id: string) => def.stageOptions.get(id) ?? {};
      const ctx: RuntimeContext = {
        def,
        mode,
        instance: options.instance ?? '0',
        runId: randomUUID(),
        logger,
        buffer,
        store:
          options.checkpointStore ??
          (options.checkpointDir === undefined
            ? undefined
            : new FileCheckpointStore(options.checkpointDir)),
        compile: options.compileTransform ?? registeredTransformCompiler() ?? compileTransform,
        metrics,
        signal: stop.signal,
        batchSize: options.batchSize ?? 500,
        pollTimeoutMs: options.pollTimeoutMs ?? 100,
        tickIntervalMs: options.tickIntervalMs ?? 200,
        checkpointIntervalMs: options.checkpointIntervalMs ?? 1000,
        retryPolicy: () => ({ retries, backoffMs, signal: stop.signal, logger }),
        fail(error) {
          if (failure === undefined) {
            failure = { error };
            logger.error('pipeline failed; stopping', { error });
          }
          stop.abort();
        },
        failed: () => failure !== undefined,
        stageOptions,
        topicOf: (id) => stageOptions(id).topic ?? id,
        groupOf: (id) => stageOptions(id).group ?? id,
        serdeOf: (id) => getSerde(stageOptions(id).serde ?? 'json'),
        stageContext: (stage) => ({
          stageId: stage.id,
          pipelineName: def.name,
          logger: logger.child({ stage: stage.id }),
          signal: stop.signal,
        }),
        deadLetterQueue: (stage) =>
          new DeadLetterQueue(
            `${stage.id}${def.deadLetter.topicSuffix}`,
            {
              pipeline: def.name,
              stageId: stage.id,
              component: stage.component,
              componentVersion: stage.componentVersion,
            },
            metrics.stage(stage.id, stage.kind),
          ),
      };
      try {
        if (mode === 'inline') await runInline(ctx);
        else await runStageWorkers(ctx, mode === 'worker' ? [options.stage!] : stages);
      } catch (error) {
        ctx.fail(error);
      }
      const deadLettered = metrics.snapshot().stages.reduce((n, s) => n + s.deadLettered, 0);
      if (ownsBuffer && deadLettered > 0) {
        logger.warn(
          `${deadLettered} record(s) went to dead-letter topics of this run's own in-memory buffer, which ends with the run. To keep them, give the pipeline a buffer (setBuffer) and read the <stage>${def.deadLetter.topicSuffix} topics.`,
          { deadLettered },
        );
      }
      if (failure !== undefined) throw failure.error;
      return {
        pipeline: def.name,
        mode,
        status: stoppedByUser ? 'stopped' : 'finished',
        durationMs: Date.now() - started,
        metrics: metrics.snapshot(),
      };
    } finally {
      options.signal?.removeEventListener('abort', onStop);
      if (options.handleSignals) {
        process.removeListener('SIGINT', onStop);
        process.removeListener('SIGTERM', onStop);
      }
      await server?.close();
      if (ownsBuffer) await buffer.close();
    }
  })();
  return { metrics, done };
}
