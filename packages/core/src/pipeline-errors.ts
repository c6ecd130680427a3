import { CodefeedrError } from './errors.js';

/**
 * One thing wrong with a pipeline's shape. Validation collects every problem and throws
 * them together as a PipelineValidationError, so a user fixes everything in one pass.
 */
export abstract class PipelineProblem extends CodefeedrError {}

export class EmptyPipelineProblem extends PipelineProblem {
  constructor(pipeline: string) {
    super(
      'EMPTY_PIPELINE',
      `Pipeline "${pipeline}" has no stages. Add at least an input stage and an output stage with append() or edge().`,
      { pipeline },
    );
  }
}

export class DuplicateStageIdProblem extends PipelineProblem {
  constructor(stageId: string, count: number) {
    super(
      'DUPLICATE_STAGE_ID',
      `${count} different stages share the id "${stageId}". Stage ids are topic and group names: give each stage a unique id.`,
      { stageId, count },
    );
  }
}

export class DuplicateEdgeProblem extends PipelineProblem {
  constructor(from: string, to: string) {
    super(
      'DUPLICATE_EDGE',
      `The edge "${from}" -> "${to}" is declared more than once. Remove the repeated edge() / addParents() entry.`,
      { from, to },
    );
  }
}

export class CycleProblem extends PipelineProblem {
  readonly path: readonly string[];
  constructor(path: readonly string[]) {
    super(
      'CYCLE',
      `The stages form a cycle: ${path.join(' -> ')}. A pipeline must be acyclic: remove one of these edges.`,
      { path },
    );
    this.path = path;
  }
}

export class EdgeIntoInputProblem extends PipelineProblem {
  constructor(from: string, to: string) {
    super(
      'EDGE_INTO_INPUT',
      `Edge "${from}" -> "${to}" points into input stage "${to}", which cannot have parents. Reverse the edge or use a transform stage.`,
      { from, to },
    );
  }
}

export class EdgeFromOutputProblem extends PipelineProblem {
  constructor(from: string, to: string) {
    super(
      'EDGE_FROM_OUTPUT',
      `Edge "${from}" -> "${to}" starts at output stage "${from}", which emits nothing. Start the edge at an input or transform stage.`,
      { from, to },
    );
  }
}

export class InputCountMismatchProblem extends PipelineProblem {
  constructor(stageId: string, declared: number, parents: number) {
    super(
      'INPUT_COUNT_MISMATCH',
      `Stage "${stageId}" declares ${declared} input${declared === 1 ? '' : 's'} but has ${parents} parent${parents === 1 ? '' : 's'}. Connect exactly ${declared} parent stage${declared === 1 ? '' : 's'}, in input order.`,
      { stageId, declared, parents },
    );
  }
}

export class TypeMismatchProblem extends PipelineProblem {
  constructor(
    from: string,
    to: string,
    inputIndex: number,
    expected: string,
    actual: string,
    output?: string,
  ) {
    const parent = output === undefined ? from : `${from}:${output}`;
    super(
      'TYPE_MISMATCH',
      `Input ${inputIndex + 1} of stage "${to}" expects ${expected} but its parent "${parent}" emits ${actual}. Connect a parent emitting ${expected} there (inputs are matched in order: check for swapped parents) or add a transform in between.`,
      { from, to, inputIndex, expected, actual, ...(output === undefined ? {} : { output }) },
    );
  }
}

export class UnknownOutputProblem extends PipelineProblem {
  constructor(from: string, output: string, to: string, declared: readonly string[]) {
    super(
      'UNKNOWN_OUTPUT',
      `Edge "${from}:${output}" -> "${to}" reads output "${output}" of stage "${from}", which ${declared.length === 0 ? 'declares no named outputs' : `declares ${declared.map((d) => `"${d}"`).join(', ')}`}. Name a declared output, or "${from}" alone for its main output.`,
      { from, output, to, declared },
    );
  }
}

export class OutputTopicClashProblem extends PipelineProblem {
  constructor(stageId: string, output: string, clash: string) {
    super(
      'OUTPUT_TOPIC_CLASH',
      `Output "${output}" of stage "${stageId}" is written to the topic "${stageId}.${output}", which ${clash}. Rename the stage or the output.`,
      { stageId, output, clash },
    );
  }
}

export class UnknownStageProblem extends PipelineProblem {
  constructor(stageId: string, edge: { from: string; to: string }) {
    super(
      'UNKNOWN_STAGE',
      `Edge "${edge.from}" -> "${edge.to}" names stage "${stageId}", which is not in the pipeline. Add the stage or fix the id.`,
      { stageId, from: edge.from, to: edge.to },
    );
  }
}

export class DanglingStageProblem extends PipelineProblem {
  constructor(stageId: string) {
    super(
      'DANGLING_STAGE',
      `Stage "${stageId}" is not reachable from any input stage, so it would never receive data. Connect it to a parent or remove it.`,
      { stageId },
    );
  }
}

export class ReservedStageIdProblem extends PipelineProblem {
  constructor(stageId: string, suffix: string) {
    super(
      'RESERVED_STAGE_ID',
      `Stage id "${stageId}" ends in "${suffix}", which names the dead-letter topic of stage "${stageId.slice(0, -suffix.length)}": another stage would read its dead letters as records. Rename the stage.`,
      { stageId, suffix },
    );
  }
}

/** Thrown by build() (and the registry's pipeline-file check): every problem at once. */
export class PipelineValidationError extends CodefeedrError {
  readonly problems: readonly PipelineProblem[];
  constructor(pipeline: string, problems: readonly PipelineProblem[]) {
    super(
      'PIPELINE_INVALID',
      `Pipeline "${pipeline}" is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems
        .map((p) => `  - [${p.code}] ${p.message}`)
        .join('\n')}`,
      { pipeline, problems: problems.map((p) => ({ code: p.code, ...p.details })) },
    );
    this.problems = problems;
  }
}
