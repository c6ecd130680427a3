import type { MessageType } from './message-type.js';
import type { PipelineEdge } from './pipeline.js';
import type { PipelineDefinition, StageOptions } from './pipeline-builder.js';
import { formatOutputRef } from './named-outputs.js';
import { RunOptionsError } from './run-errors.js';
import type { AnyStage, InputStage, OutputStage } from './stage.js';

/**
 * One output (main or named) of a parallel stage read by a stage of the main thread: each
 * worker thread sends it through a port sink, and the main thread reads split i's share from
 * the port source `<ref>[i]`.
 */
export interface SplitPort {
  readonly index: number;
  readonly from: string;
  readonly output: string | undefined;
  readonly type: MessageType<unknown>;
  /** `from`, or `from:output`. */
  readonly ref: string;
}

/** How a split run divides a pipeline between its worker threads and the main thread. */
export interface SplitPlan {
  readonly count: number;
  /** Stages run once per split, in the worker threads. */
  readonly parallel: ReadonlySet<string>;
  readonly ports: readonly SplitPort[];
}

/** The stage id a split's port source has in the main thread. */
export function portSourceId(port: SplitPort, split: number): string {
  return `${port.ref}[${split}]`;
}

/** The stage id of a port's sink in a worker thread. */
export function portSinkId(port: SplitPort): string {
  return `${port.ref}>main`;
}

/**
 * Checks that `def` can run as `count` splits and says how: the parallel stages, and the
 * outputs that cross to the main thread. Every problem at once, as a RunOptionsError.
 */
export function planSplits(def: PipelineDefinition, count: number): SplitPlan {
  const problems: string[] = [];
  if (!Number.isInteger(count) || count < 1)
    problems.push(`splits must be a whole number of at least 1 (got ${String(count)})`);
  if (def.factory === undefined)
    problems.push(
      `pipeline "${def.name}" has no factory: call setFactory({ module: import.meta.url, export: '<the function that builds it>', config }) on its PipelineBuilder, so each worker thread can build it again`,
    );
  const parallel = new Set(
    def.stages.filter((s) => def.stageOptions.get(s.id)?.parallel === true).map((s) => s.id),
  );
  if (parallel.size === 0)
    problems.push(
      `no stage of "${def.name}" is parallel: mark the per-split stages with setStageOptions(id, { parallel: true })`,
    );
  for (const stage of def.stages) {
    if (!parallel.has(stage.id)) continue;
    if (stage.kind === 'input' && stage.splittable !== true)
      problems.push(
        `input stage "${stage.id}" is parallel but its source cannot read a share of its input (not splittable): each split would read all of it`,
      );
    for (const parent of def.parents.get(stage.id) ?? [])
      if (!parallel.has(parent))
        problems.push(
          `stage "${stage.id}" is parallel but its parent "${parent}" is not: records cannot go from the main thread back to the splits`,
        );
  }
  if (problems.length > 0)
    throw new RunOptionsError(
      `Cannot run "${def.name}" in ${String(count)} splits:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { pipeline: def.name, splits: count, problems },
    );
  const byId = new Map(def.stages.map((s) => [s.id, s]));
  const ports: SplitPort[] = [];
  const seen = new Set<string>();
  for (const edge of def.edges) {
    if (!parallel.has(edge.from) || parallel.has(edge.to)) continue;
    const ref = formatOutputRef({ stage: edge.from, output: edge.output });
    if (seen.has(ref)) continue;
    seen.add(ref);
    const from = byId.get(edge.from)!;
    const type =
      edge.output === undefined
        ? from.outputType!
        : (from as { outputs?: Record<string, MessageType<unknown>> }).outputs![edge.output]!;
    ports.push({ index: ports.length, from: edge.from, output: edge.output, type, ref });
  }
  return { count, parallel, ports };
}

/** The worker threads' pipeline: the parallel stages, and a port sink per crossing output. */
export function workerDefinition(
  def: PipelineDefinition,
  plan: SplitPlan,
  portSink: (port: SplitPort) => OutputStage,
): PipelineDefinition {
  const stages: AnyStage[] = def.stages.filter((s) => plan.parallel.has(s.id));
  const parents = new Map<string, string[]>(stages.map((s) => [s.id, [...def.parents.get(s.id)!]]));
  const edges: PipelineEdge[] = def.edges.filter(
    (e) => plan.parallel.has(e.from) && plan.parallel.has(e.to),
  );
  const stageOptions = new Map<string, StageOptions>();
  for (const s of stages) {
    const options = def.stageOptions.get(s.id);
    if (options !== undefined) stageOptions.set(s.id, options);
  }
  for (const port of plan.ports) {
    const sink = portSink(port);
    stages.push(sink);
    parents.set(sink.id, [port.from]);
    edges.push({
      from: port.from,
      ...(port.output === undefined ? {} : { output: port.output }),
      to: sink.id,
      inputIndex: 0,
    });
    // The main thread's stages validate what they read; checking it here too would pay twice.
    stageOptions.set(sink.id, { validation: 'off' });
  }
  return { ...def, stages, parents, edges, stageOptions, factory: undefined };
}

/**
 * The main thread's pipeline: the stages that are not parallel, each crossing edge replaced by
 * one edge per split from that split's port source, all into the same input, so every split is
 * a channel of that input.
 */
export function mainDefinition(
  def: PipelineDefinition,
  plan: SplitPlan,
  portSource: (port: SplitPort, split: number) => InputStage,
): PipelineDefinition {
  const stages: AnyStage[] = [];
  const sourceIds = new Map<string, string[]>();
  for (const port of plan.ports) {
    const ids: string[] = [];
    for (let split = 0; split < plan.count; split++) {
      const source = portSource(port, split);
      stages.push(source);
      ids.push(source.id);
    }
    sourceIds.set(port.ref, ids);
  }
  const kept = def.stages.filter((s) => !plan.parallel.has(s.id));
  stages.push(...kept);
  const parents = new Map<string, string[]>(stages.map((s) => [s.id, []]));
  const edges: PipelineEdge[] = [];
  for (const edge of def.edges) {
    if (plan.parallel.has(edge.to)) continue;
    if (!plan.parallel.has(edge.from)) {
      edges.push(edge);
      parents.get(edge.to)!.push(edge.from);
      continue;
    }
    for (const id of sourceIds.get(formatOutputRef({ stage: edge.from, output: edge.output }))!) {
      edges.push({ from: id, to: edge.to, inputIndex: edge.inputIndex });
      parents.get(edge.to)!.push(id);
    }
  }
  // By target (sources first, then the kept stages in their order), then input: still topological.
  const order = new Map(stages.map((st, i) => [st.id, i]));
  edges.sort((a, b) => order.get(a.to)! - order.get(b.to)! || a.inputIndex - b.inputIndex);
  const stageOptions = new Map<string, StageOptions>();
  for (const s of kept) {
    const options = def.stageOptions.get(s.id);
    if (options !== undefined) stageOptions.set(s.id, options);
  }
  return { ...def, stages, parents, edges, stageOptions, factory: undefined };
}
