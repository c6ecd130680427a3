import { CodefeedrError } from './errors.js';
import type { PipelineEdge } from './pipeline.js';
import type { AnyStage, NamedOutputTypes } from './stage.js';

/**
 * Named outputs of a transform (Flink's side outputs, promoted to edges of the pipeline): each
 * is a stream of its own type with its own topic, `<stage topic>.<name>`, that other stages
 * read as `<stage>:<name>`. The name must be usable in a topic name (Kafka allows letters,
 * digits, `.`, `_` and `-`; a dot would make `a.b` + `c` and `a` + `b.c` one topic).
 */
const OUTPUT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** A transform declares or returns named outputs that cannot be used. */
export class NamedOutputError extends CodefeedrError {
  constructor(owner: string, problem: string) {
    super(
      'NAMED_OUTPUT_INVALID',
      `${owner}: ${problem}. Declare each named output in \`outputs\` with its message type, and return \`{ main, <name>: stream, ... }\` from transform() with exactly those names.`,
      { owner },
    );
  }
}

/** Throws a NamedOutputError for a declared name that is reserved or not usable in a topic. */
export function checkOutputNames(owner: string, outputs: NamedOutputTypes): void {
  for (const name of Object.keys(outputs)) {
    if (name === 'main')
      throw new NamedOutputError(owner, '"main" is the main output and cannot be declared');
    if (!OUTPUT_NAME.test(name))
      throw new NamedOutputError(
        owner,
        `output name "${name}" must start with a letter or digit and hold only letters, digits, "_" and "-"`,
      );
  }
}

/** The names of a stage's named outputs, in declared order (none but a transform's). */
export function namedOutputsOf(stage: AnyStage): string[] {
  return stage.kind === 'transform' ? Object.keys(stage.outputs ?? {}) : [];
}

/** The topic of a stage's named output; the stage's own topic for its main output (none). */
export function namedOutputTopic(stageTopic: string, output: string | undefined): string {
  return output === undefined ? stageTopic : `${stageTopic}.${output}`;
}

/** A transform's named outputs as message type ids (undefined: it declares none). */
export function outputTypeIdsOf(stage: AnyStage): Record<string, string> | undefined {
  if (stage.kind !== 'transform' || stage.outputs === undefined) return undefined;
  return Object.fromEntries(Object.entries(stage.outputs).map(([name, type]) => [name, type.id]));
}

/** The edges into `stageId`, in input order. */
export function edgesInto(edges: readonly PipelineEdge[], stageId: string): PipelineEdge[] {
  return edges.filter((e) => e.to === stageId).sort((a, b) => a.inputIndex - b.inputIndex);
}

/** A parent reference: `stage` (its main output) or `stage:output`. */
export interface OutputRef {
  /** The stage id. */
  readonly stage: string;
  /** One of its named outputs; none: its main output. */
  readonly output?: string | undefined;
}

/** Splits `stage:output` (ids hold no `:`: it is not allowed in a topic name either). */
export function parseOutputRef(ref: string): OutputRef {
  const colon = ref.lastIndexOf(':');
  return colon <= 0 || colon === ref.length - 1
    ? { stage: ref }
    : { stage: ref.slice(0, colon), output: ref.slice(colon + 1) };
}

/** `stage` or `stage:output`, as edges and messages name it. */
export function formatOutputRef(ref: OutputRef): string {
  return ref.output === undefined ? ref.stage : `${ref.stage}:${ref.output}`;
}

/** The parents of `stageId` in input order, as references (`stage` or `stage:output`). */
export function parentRefsOf(edges: readonly PipelineEdge[], stageId: string): string[] {
  return edgesInto(edges, stageId).map((e) => formatOutputRef({ stage: e.from, output: e.output }));
}
