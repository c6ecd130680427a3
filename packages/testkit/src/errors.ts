import { CodefeedrError } from '@codefeedr/core';

/**
 * A transform harness was used in a way the runtime never drives a chain: a batch after
 * finish(), time going backwards, an input index the stage does not have.
 */
export class TransformHarnessError extends CodefeedrError {
  constructor(stageId: string, problem: string, fix: string) {
    super('TESTKIT_HARNESS_MISUSE', `Transform harness of stage "${stageId}": ${problem}. ${fix}`, {
      stageId,
    });
  }
}

/** The core in use cannot do what the harness was asked (a newer @codefeedr/core can). */
export class HarnessUnsupportedError extends CodefeedrError {
  constructor(feature: string, fix: string) {
    super('TESTKIT_HARNESS_UNSUPPORTED', `The transform harness cannot ${feature}: ${fix}`, {
      feature,
    });
  }
}

/** A conformance suite's `input`/`output` does not name a usable component. */
export class ComponentModuleError extends CodefeedrError {
  constructor(module: string, exportName: string, problem: string) {
    super(
      'TESTKIT_COMPONENT_MODULE',
      `${module} export "${exportName}": ${problem}. Point \`module\` at the file or package that exports the component (e.g. new URL('./index.ts', import.meta.url)) and \`export\` at its exported name.`,
      { module, export: exportName },
    );
  }
}
