import type { PipelineDefinition } from './pipeline-builder.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { StateStore } from './state-store.js';
import type { StateBackendChoice } from './disk-keyed-map.js';
import type { Logger } from './logger.js';
import type { PipelineMetricsSnapshot } from './metrics.js';
import type { CompileTransform } from './operator-chain.js';
import { outputTypeIdsOf } from './named-outputs.js';
import { runPipeline, type RunHandle } from './runtime.js';
import type { AnyStage, StageKind } from './stage.js';

export interface PipelineEdge {
  from: string;
  /** The named output of `from` this edge reads (see TransformOutputs); none: its main output. */
  output?: string;
  to: string;
  /** Which input of `to` this edge feeds (order of edge()/addParents() calls). */
  inputIndex: number;
}

export interface StageDescription {
  id: string;
  kind: StageKind;
  component: string | null;
  inputTypes: string[];
  outputType: string | null;
  /** Named outputs and their type ids (transforms that declare them). */
  outputs?: Record<string, string>;
}

export interface PipelineDescription {
  name: string;
  /** Topological order. */
  stages: StageDescription[];
  edges: PipelineEdge[];
}

export type RunMode = 'inline' | 'local' | 'worker';

export interface RunOptions {
  /** `inline` (default): whole DAG, in-memory edges. `local`: every edge through the buffer. `worker`: one stage. */
  mode?: RunMode;
  /** The stage a `worker` runs. */
  stage?: string;
  /** Worker instance name; keeps checkpoints of several workers of one stage apart (default `0`). */
  instance?: string;
  /** Aborting stops the run gracefully: drain the batch in flight, flush sinks, commit, resolve. */
  signal?: AbortSignal;
  /** Stop gracefully on SIGINT/SIGTERM (the CLI sets this). */
  handleSignals?: boolean;
  /**
   * Log the error that failed the run (`pipeline failed; stopping`, level error) when it
   * happens; default true. A caller that reports the rejected run's error itself (the CLI)
   * turns it off so the user does not read the same error twice.
   */
  logFailure?: boolean;
  /** Directory of a FileCheckpointStore; or pass `checkpointStore`. Without either, state is not persisted. */
  checkpointDir?: string;
  checkpointStore?: CheckpointStore;
  /**
   * Where the keyed state of transform stages on a buffer (`local`, `worker`) lives, sharded
   * by input partition so it follows a partition to another worker: `file` (default when
   * `checkpointDir` is set: `<checkpointDir>/<pipeline>/<stage>.state/`), `buffer` (the
   * buffer's own store, e.g. Redis: shared by workers on any machine), or a StateStore.
   * Without checkpointDir or this, keyed state is not persisted. Inline runs keep their state
   * in their checkpoint.
   */
  stateStore?: 'file' | 'buffer' | StateStore;
  /**
   * Where transform stages keep their keyed state while they run: `memory` (default; JS Maps)
   * or `disk` (state larger than memory: a SQLite file per keyed operator under `stateDir`
   * behind a bounded cache, deleted when the stage closes), or a StateBackend such as
   * `new DiskStateBackend({ dir, cacheEntries })`. Checkpoints are the same either way. A
   * stage's own `stateBackend` (setStageOptions) wins.
   */
  stateBackend?: StateBackendChoice;
  /** Directory of the disk backend's files (default the OS temp directory). CLI: --state-dir. */
  stateDir?: string;
  /** Checkpoint + commit at most this often (default 1000 ms) and always at the end. */
  checkpointIntervalMs?: number;
  /**
   * Inline runs only: run the stages marked `parallel` (setStageOptions) `splits` times, one
   * worker thread per split, each reading its share of the splittable inputs; the other stages
   * run in this thread and see each split as a channel (event time merges as the minimum over
   * splits). Needs setFactory(); keeps no checkpoints (a restart reads from the start). Default 1:
   * everything in this thread.
   */
  splits?: number;
  /** Records per source poll / consumer poll (default 500). */
  batchSize?: number;
  /** How long a consumer poll waits for the first record (default 100 ms). */
  pollTimeoutMs?: number;
  /** Processing-time tick for idle watermarks and timers (default 200 ms). */
  tickIntervalMs?: number;
  /**
   * Processing time (epoch ms) as the run sees it: idle timeouts of watermarks measure
   * against it (default `Date.now`). Tests inject a fake clock; ticks still come every
   * `tickIntervalMs` of real time.
   */
  clock?: () => number;
  /** Attempts after the first for a failing source/sink/buffer call before the run fails (default 3). */
  ioRetries?: number;
  /** First backoff between those attempts, doubled each time up to 5 s (default 100 ms). */
  ioRetryBackoffMs?: number;
  /**
   * Serve /metrics, /metrics.json and /pipeline.json (the DAG, no config values) on this port
   * (0 = any free port). Off when undefined.
   */
  metricsPort?: number;
  metricsHost?: string;
  /** Called once the metrics endpoint listens. */
  onMetricsListening?: (url: string) => void;
  logger?: Logger;
  /** Override the DataStream compiler (alternative engines, tests). */
  compileTransform?: CompileTransform;
}

export interface RunSummary {
  pipeline: string;
  mode: RunMode;
  /** `finished`: every bounded input ended and was drained. `stopped`: aborted/signalled and drained. */
  status: 'finished' | 'stopped';
  durationMs: number;
  metrics: PipelineMetricsSnapshot;
  /** Stages that dead-lettered records this run: how many, and where they are (a file path or `topic <name>`). */
  deadLetters: { stage: string; count: number; location: string }[];
}

/** A validated pipeline DAG (from PipelineBuilder.build()), ready to describe and run. */
export class Pipeline {
  readonly definition: PipelineDefinition;
  private current: RunHandle | undefined;

  constructor(definition: PipelineDefinition) {
    this.definition = definition;
  }

  get name(): string {
    return this.definition.name;
  }

  get stages(): readonly AnyStage[] {
    return this.definition.stages;
  }

  /** The DAG as data: stages and edges in topological order. */
  describe(): PipelineDescription {
    return {
      name: this.name,
      stages: this.definition.stages.map((s) => ({
        id: s.id,
        kind: s.kind,
        component: s.component ?? null,
        inputTypes: s.inputTypes.map((t) => t.id),
        outputType: s.outputType?.id ?? null,
        ...withOutputs(outputTypeIdsOf(s)),
      })),
      edges: this.definition.edges.map((e) => ({ ...e })),
    };
  }

  /** Runs the pipeline until its bounded inputs end or `signal` aborts. */
  async run(options: RunOptions = {}): Promise<RunSummary> {
    const handle = runPipeline(this.definition, options, () => this.describe());
    this.current = handle;
    return handle.done;
  }

  /** Live metrics of the current (or last) run; empty before the first run. */
  metrics(): PipelineMetricsSnapshot {
    return (
      this.current?.metrics.snapshot() ?? {
        pipeline: this.name,
        mode: 'none',
        startedAt: 0,
        stages: [],
      }
    );
  }
}

/** `{ outputs }` when there are any, else nothing (describe() leaves the key out). */
function withOutputs(outputs: Record<string, string> | undefined): {
  outputs?: Record<string, string>;
} {
  return outputs === undefined ? {} : { outputs };
}
