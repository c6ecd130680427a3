import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Buffer } from './buffer.js';
import { FileCheckpointStore } from './checkpoint-store.js';
import { FileStateStore, type StateStore } from './state-store.js';
import { compileTransform } from './compile-transform.js';
import { ConsoleLogger } from './console-logger.js';
import { DeadLetterQueue } from './dead-letter.js';
import { MemoryBuffer } from './memory-buffer.js';
import { PipelineMetrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { runOnBuffer } from './buffer-run.js';
import {
  FileDeadLetters,
  TopicDeadLetters,
  type DeadLetterDestination,
} from './dead-letter-destination.js';
import { runInline } from './inline-run.js';
import { runSplitInline } from './split-run.js';
import { planSplits, type SplitPlan } from './split-plan.js';
import type { SplitShare } from './stage.js';
import type { PipelineDescription, RunOptions, RunSummary } from './pipeline.js';
import type { PipelineDefinition } from './pipeline-builder.js';
import { RunOptionsError, UnknownWorkerStageError } from './run-errors.js';
import type { RuntimeContext } from './runtime-context.js';
import { getSerde } from './serde-registry.js';
import { resolveStateBackend } from './disk-keyed-map.js';
import type { StateBackend } from './keyed-map.js';

export interface RunHandle {
  readonly metrics: PipelineMetrics;
  readonly done: Promise<RunSummary>;
}

/** What a split run's worker thread gives its own run (split-worker.ts); not user options. */
export interface RunInternals {
  /** The thread's share of the splittable inputs. */
  split?: SplitShare;
  /** The main thread's dead letters, through the thread's port. */
  deadLetters?: DeadLetterDestination;
}

const WHOLE: SplitShare = { index: 0, count: 1 };

/** `describe` is the DAG as data (Pipeline.describe), served as `/pipeline.json` with the metrics. */
export function runPipeline(
  def: PipelineDefinition,
  options: RunOptions,
  describe: () => PipelineDescription,
  internals: RunInternals = {},
): RunHandle {
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
    const splits = options.splits ?? 1;
    const splitPlan = splits === 1 ? undefined : checkSplitOptions(def, mode, options, splits);
    for (const stage of def.stages) {
      if (mode !== 'worker' || stage.id === options.stage) metrics.stage(stage.id, stage.kind);
    }
    // Serde names are checked before anything starts, so a typo fails fast with the known names.
    for (const stage of def.stages) getSerde(def.stageOptions.get(stage.id)?.serde ?? 'json');
    // State backends too (a misspelt one fails before anything starts).
    const runBackend = resolveStateBackend(options.stateBackend, options.stateDir);
    const stageBackends = new Map<string, StateBackend>();
    for (const stage of def.stages) {
      const choice = def.stageOptions.get(stage.id)?.stateBackend;
      if (choice !== undefined)
        stageBackends.set(stage.id, resolveStateBackend(choice, options.stateDir));
    }

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

    if (mode === 'worker' && ownsBuffer && buffer.kind === 'memory') {
      await buffer.close();
      throw new RunOptionsError(
        `Stage "${options.stage}" cannot run as a worker on the in-memory buffer: its records would live and die in this process, and no other worker could read them. Give the pipeline a shared buffer (in a pipeline file: \`buffer: { use: '@codefeedr/plugin-kafka:kafka', with: { brokers: ['host:9092'] } }\`; in TypeScript: setBuffer(kafkaBuffer, {...})), or run the whole pipeline in one process (mode inline or local).`,
        { mode, stage: options.stage },
      );
    }
    const stateStore = await resolveStateStore(options, buffer, ownsBuffer);
    const deadLetters = internals.deadLetters ?? deadLetterDestination(def, buffer, ownsBuffer);
    let server: MetricsServer | undefined;
    try {
      if (options.metricsPort !== undefined) {
        const running = mode === 'worker' ? [options.stage!] : stages;
        const bufferOf = {
          kind: buffer.kind,
          component:
            def.buffer !== undefined && 'component' in def.buffer
              ? def.buffer.component.name
              : null,
        };
        server = await startMetricsServer(
          () => metrics.snapshot(),
          options.metricsPort,
          options.metricsHost,
          () => ({ ...describe(), mode, running, buffer: bufferOf }),
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
        stateStore,
        stateStoreChosen: options.stateStore !== undefined,
        compile: options.compileTransform ?? compileTransform,
        deadLetters,
        metrics,
        signal: stop.signal,
        batchSize: options.batchSize ?? 500,
        pollTimeoutMs: options.pollTimeoutMs ?? 100,
        tickIntervalMs: options.tickIntervalMs ?? 200,
        clock: options.clock ?? Date.now,
        checkpointIntervalMs: options.checkpointIntervalMs ?? 1000,
        retryPolicy: () => ({ retries, backoffMs, signal: stop.signal, logger }),
        fail(error) {
          if (failure === undefined) {
            failure = { error };
            if (options.logFailure !== false) logger.error('pipeline failed; stopping', { error });
          }
          stop.abort();
        },
        failed: () => failure !== undefined,
        stageOptions,
        stateBackendOf: (id) => stageBackends.get(id) ?? runBackend,
        topicOf: (id) => stageOptions(id).topic ?? id,
        groupOf: (id) => stageOptions(id).group ?? id,
        serdeOf: (id) => getSerde(stageOptions(id).serde ?? 'json'),
        stageContext: (stage) => ({
          stageId: stage.id,
          pipelineName: def.name,
          logger: logger.child({ stage: stage.id }),
          signal: stop.signal,
          split: internals.split ?? WHOLE,
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
        if (splitPlan !== undefined) await runSplitInline(ctx, options, splitPlan);
        else if (mode === 'inline') await runInline(ctx);
        else await runOnBuffer(ctx, mode === 'worker' ? [options.stage!] : stages);
      } catch (error) {
        ctx.fail(error);
      }
      if (failure !== undefined) throw failure.error;
      const snapshot = metrics.snapshot();
      return {
        pipeline: def.name,
        mode,
        status: stoppedByUser ? 'stopped' : 'finished',
        durationMs: Date.now() - started,
        metrics: snapshot,
        deadLetters: snapshot.stages
          .filter((s) => s.deadLettered > 0)
          .map((s) => ({
            stage: s.stage,
            count: s.deadLettered,
            location: deadLetters.locationOf(s.stage),
          })),
      };
    } finally {
      options.signal?.removeEventListener('abort', onStop);
      if (options.handleSignals) {
        process.removeListener('SIGINT', onStop);
        process.removeListener('SIGTERM', onStop);
      }
      await server?.close();
      await deadLetters
        .close()
        .catch((error: unknown) => logger.warn('closing dead letters failed', { error }));
      await stateStore
        ?.close?.()
        .catch((error: unknown) => logger.warn('closing the state store failed', { error }));
      if (ownsBuffer) await buffer.close();
    }
  })();
  return { metrics, done };
}

/** What a split run cannot do, refused before anything starts; the plan of one that can. */
function checkSplitOptions(
  def: PipelineDefinition,
  mode: string,
  options: RunOptions,
  splits: number,
): SplitPlan {
  if (mode !== 'inline')
    throw new RunOptionsError(
      `splits are for inline runs (mode '${mode}' was asked): on a buffer, run more workers of a stage instead (its topic's partitions are the unit of parallelism).`,
      { mode, splits },
    );
  if (
    options.checkpointDir !== undefined ||
    options.checkpointStore !== undefined ||
    options.stateStore !== undefined
  )
    throw new RunOptionsError(
      'A split run keeps no checkpoints (its threads have no common batch boundary), so it cannot resume from checkpointDir, checkpointStore or stateStore: leave them out, or run without splits.',
      { splits },
    );
  if (typeof options.stateBackend === 'object')
    throw new RunOptionsError(
      "A split run's threads cannot share a StateBackend object: use stateBackend 'memory' or 'disk'.",
      { splits },
    );
  return planSplits(def, splits);
}

/**
 * Dead letters go where the user said (`setDeadLetter({ destination, dir })`); by default to
 * `<stage>.dlq` topics of a buffer that outlives the run, and to NDJSON files when the buffer
 * is the run's own memory buffer (which ends with the run: its topics would lose them).
 */
function deadLetterDestination(
  def: PipelineDefinition,
  buffer: Buffer,
  ownsBuffer: boolean,
): DeadLetterDestination {
  const { destination = 'auto', topicSuffix, dir } = def.deadLetter;
  const toFile =
    destination === 'file' || (destination === 'auto' && ownsBuffer && buffer.kind === 'memory');
  return toFile
    ? new FileDeadLetters(dir ?? join('.codefeedr', 'dead-letters', def.name), topicSuffix)
    : new TopicDeadLetters(buffer, topicSuffix, `${def.name}.dead-letters`);
}

/** RunOptions.stateStore resolved: the file store under checkpointDir by default. */
async function resolveStateStore(
  options: RunOptions,
  buffer: Buffer,
  ownsBuffer: boolean,
): Promise<StateStore | undefined> {
  const wanted = options.stateStore ?? (options.checkpointDir === undefined ? undefined : 'file');
  if (wanted === undefined || typeof wanted === 'object') return wanted;
  if (wanted === 'file') {
    if (options.checkpointDir === undefined) {
      if (ownsBuffer) await buffer.close();
      throw new RunOptionsError(
        'stateStore "file" keeps partition state under the checkpoint directory: set checkpointDir (CLI: --checkpoint-dir <dir>).',
        { stateStore: wanted },
      );
    }
    return new FileStateStore(options.checkpointDir);
  }
  if (wanted === 'buffer') {
    if (buffer.stateStore === undefined) {
      if (ownsBuffer) await buffer.close();
      throw new RunOptionsError(
        `stateStore "buffer": the ${buffer.kind} buffer has no state store of its own. Use "file" with a checkpoint directory, or a buffer that has one (Redis).`,
        { stateStore: wanted, buffer: buffer.kind },
      );
    }
    return buffer.stateStore();
  }
  if (ownsBuffer) await buffer.close();
  throw new RunOptionsError(
    `stateStore "${String(wanted)}" is not a state store: use "file", "buffer" or a StateStore object.`,
    { stateStore: String(wanted) },
  );
}
