import { CodefeedrError } from './errors.js';

/** `pipeline.run()` options that cannot work together or name nothing. */
export class RunOptionsError extends CodefeedrError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('RUN_OPTIONS_INVALID', message, details);
  }
}

export class UnknownWorkerStageError extends CodefeedrError {
  constructor(stage: string | undefined, known: readonly string[]) {
    super(
      'UNKNOWN_WORKER_STAGE',
      stage === undefined
        ? `Worker mode needs the stage to run: pass { mode: 'worker', stage: <id> } (stages: ${known.join(', ')}).`
        : `No stage "${stage}" in this pipeline. Stages: ${known.join(', ')}.`,
      { stage, known },
    );
  }
}
