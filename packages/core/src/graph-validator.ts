import {
  CycleProblem,
  DanglingStageProblem,
  DuplicateEdgeProblem,
  DuplicateStageIdProblem,
  EdgeFromOutputProblem,
  EdgeIntoInputProblem,
  EmptyPipelineProblem,
  InputCountMismatchProblem,
  OutputTopicClashProblem,
  ReservedStageIdProblem,
  TypeMismatchProblem,
  UnknownOutputProblem,
  UnknownStageProblem,
  type PipelineProblem,
} from './pipeline-errors.js';
import { typeIdAccepts } from './message-type.js';
import { formatOutputRef } from './named-outputs.js';
import type { StageKind } from './stage.js';

/** A stage as the graph rules see it: plain data, from a PipelineBuilder or a pipeline file's manifests. */
export interface GraphStage {
  readonly id: string;
  readonly kind: StageKind;
  /** Declared input message type ids (`github.PushEvent@1`), in input order. */
  readonly inputTypeIds: readonly string[];
  readonly outputTypeId: string | null;
  /** Named outputs and their message type ids (see TransformOutputs). */
  readonly outputTypeIds?: Readonly<Record<string, string>> | undefined;
}

/** `from` feeds the next input of `to`: a stage's parents are its edges' `from`s in edge order. */
export interface GraphEdge {
  readonly from: string;
  /** The named output of `from` the edge reads; none: the main output. */
  readonly output?: string | undefined;
  readonly to: string;
}

export interface PipelineGraph {
  readonly name: string;
  readonly stages: readonly GraphStage[];
  readonly edges: readonly GraphEdge[];
  /** Stage ids ending in this are reserved for dead-letter topics (default `.dlq`). */
  readonly deadLetterSuffix?: string;
}

/**
 * The one set of rules a pipeline's shape must follow, for the TypeScript builder and the
 * pipeline-file check alike: unique ids that are not a dead-letter topic's name, edges between
 * known stages that go from an emitting stage into a consuming one, as many parents as
 * declared inputs with matching message types input by input, no cycle, nothing unreachable.
 * Every problem is returned (stable order), so a user fixes them in one pass; each carries the
 * stage or edge it is about in `details`, which the registry maps to file:line:column.
 */
export function validateGraph(graph: PipelineGraph): PipelineProblem[] {
  const problems: PipelineProblem[] = [];
  if (graph.stages.length === 0) return [new EmptyPipelineProblem(graph.name)];
  const suffix = graph.deadLetterSuffix ?? '.dlq';

  const byId = new Map<string, GraphStage>();
  const counts = new Map<string, number>();
  for (const stage of graph.stages) {
    counts.set(stage.id, (counts.get(stage.id) ?? 0) + 1);
    if (!byId.has(stage.id)) byId.set(stage.id, stage);
  }
  for (const [id, count] of counts) {
    if (count > 1) problems.push(new DuplicateStageIdProblem(id, count));
    if (suffix !== '' && id.endsWith(suffix)) problems.push(new ReservedStageIdProblem(id, suffix));
  }
  // A named output's topic is `<stage>.<output>`: neither another stage's nor a dead-letter topic.
  for (const stage of byId.values())
    for (const output of Object.keys(stage.outputTypeIds ?? {})) {
      const topic = `${stage.id}.${output}`;
      if (byId.has(topic))
        problems.push(new OutputTopicClashProblem(stage.id, output, `is stage "${topic}"'s`));
      else if (suffix !== '' && topic.endsWith(suffix))
        problems.push(new OutputTopicClashProblem(stage.id, output, 'is its dead-letter topic'));
    }

  const seen = new Set<string>();
  const parents = new Map<string, GraphEdge[]>();
  const known: GraphEdge[] = [];
  // Edges already reported as wrong still count as the parents a user meant, so one mistake
  // is one problem: no input-count or unreachable report cascades from it.
  const brokenInto = new Map<string, number>();
  const broken = (to: string) => brokenInto.set(to, (brokenInto.get(to) ?? 0) + 1);
  for (const edge of graph.edges) {
    const key = `${edge.from}\u0000${edge.output ?? ''}\u0000${edge.to}`;
    if (seen.has(key)) {
      problems.push(
        new DuplicateEdgeProblem(
          formatOutputRef({ stage: edge.from, output: edge.output }),
          edge.to,
        ),
      );
      continue;
    }
    seen.add(key);
    let unknown = false;
    for (const id of new Set([edge.from, edge.to])) {
      if (!byId.has(id)) {
        problems.push(new UnknownStageProblem(id, edge));
        unknown = true;
      }
    }
    if (unknown) {
      broken(edge.to);
      continue;
    }
    if (byId.get(edge.to)!.kind === 'input') {
      problems.push(new EdgeIntoInputProblem(edge.from, edge.to));
      continue;
    }
    if (byId.get(edge.from)!.kind === 'output') {
      problems.push(new EdgeFromOutputProblem(edge.from, edge.to));
      broken(edge.to);
      continue;
    }
    if (edge.output !== undefined) {
      const declared = Object.keys(byId.get(edge.from)!.outputTypeIds ?? {});
      if (!declared.includes(edge.output)) {
        problems.push(new UnknownOutputProblem(edge.from, edge.output, edge.to, declared));
        broken(edge.to);
        continue;
      }
    }
    known.push(edge);
    const list = parents.get(edge.to) ?? [];
    list.push(edge);
    parents.set(edge.to, list);
  }

  for (const stage of byId.values()) {
    if (stage.kind === 'input') continue;
    const list = parents.get(stage.id) ?? [];
    const declared = stage.inputTypeIds.length;
    const meant = list.length + (brokenInto.get(stage.id) ?? 0);
    if (list.length > declared || meant < declared) {
      problems.push(
        new InputCountMismatchProblem(stage.id, declared, Math.max(list.length, meant)),
      );
    }
    // Input by input, in order: swapped parents of different types are caught.
    const n = Math.min(list.length, stage.inputTypeIds.length);
    for (let i = 0; i < n; i++) {
      const edge = list[i]!;
      const parent = byId.get(edge.from)!;
      const expected = stage.inputTypeIds[i]!;
      const actual =
        edge.output === undefined ? parent.outputTypeId : parent.outputTypeIds![edge.output]!;
      if (actual !== null && !typeIdAccepts(expected, actual)) {
        problems.push(
          new TypeMismatchProblem(parent.id, stage.id, i, expected, actual, edge.output),
        );
      }
    }
  }

  for (const cycle of findCycles([...byId.keys()], known)) problems.push(new CycleProblem(cycle));

  // Dangling: not reachable from any input stage (stages on a cycle are reported as the cycle).
  const onCycle = new Set(problems.flatMap((p) => (p instanceof CycleProblem ? p.path : [])));
  const children = new Map<string, string[]>();
  for (const e of known) children.set(e.from, [...(children.get(e.from) ?? []), e.to]);
  const reached = new Set<string>();
  const stack = [...byId.values()].filter((s) => s.kind === 'input').map((s) => s.id);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  for (const id of byId.keys()) {
    if (!reached.has(id) && !onCycle.has(id) && !brokenInto.has(id))
      problems.push(new DanglingStageProblem(id));
  }
  return problems;
}

/** Each elementary cycle found by DFS, as a path that ends where it starts. */
function findCycles(ids: readonly string[], edges: readonly GraphEdge[]): string[][] {
  const children = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) children.get(e.from)?.push(e.to);
  const state = new Map<string, 'active' | 'done'>();
  const path: string[] = [];
  const cycles: string[][] = [];
  const visit = (id: string): void => {
    state.set(id, 'active');
    path.push(id);
    for (const next of children.get(id) ?? []) {
      const s = state.get(next);
      if (s === 'active') cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    path.pop();
    state.set(id, 'done');
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  return cycles;
}
