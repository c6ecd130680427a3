import { CodefeedrError } from '@codefeedr/core';

/**
 * What `codefeedr deploy` refuses to write: manifests that could not work. Each is invalid
 * input: its code is among exit-codes.ts's INVALID_INPUT_CODES (exit 2).
 */
export abstract class DeployError extends CodefeedrError {}

/** Workers of a pipeline on the in-memory buffer (or none) could never share records. */
export class DeployBufferNotSharedError extends DeployError {
  constructor(pipeline: string, buffer: string | undefined) {
    super(
      'DEPLOY_BUFFER_NOT_SHARED',
      `Pipeline "${pipeline}" ${buffer === undefined ? 'has no `buffer:`' : `uses the ${buffer} buffer`}, so its stages cannot run as separate workers: each worker's records would live and die in its own process, and no other worker could read them (\`codefeedr run --stage\` refuses it too). Give the pipeline a shared buffer (in a pipeline file: \`buffer: { use: '@codefeedr/plugin-kafka:kafka', with: { brokers: ['host:9092'] } }\`, or '@codefeedr/plugin-redis:redis'), then deploy again.`,
      { pipeline, ...(buffer === undefined ? {} : { buffer }) },
    );
  }
}

/** More workers of a stage than partitions it reads: the extra ones would idle forever. */
export class DeployReplicasError extends DeployError {
  constructor(stage: string, replicas: number, max: number, why: string) {
    super(
      'DEPLOY_REPLICAS_INVALID',
      `Stage "${stage}" cannot have ${replicas} replicas: ${why}, so at most ${max} worker${max === 1 ? '' : 's'} can share its work (a worker without a partition idles). Ask for ${max === 1 ? '1' : `at most ${max}`} (\`--replicas ${stage}=${max}\`), or give the topics it reads more partitions (in a pipeline file: \`options: { partitions: N }\` on the stage it reads from; in TypeScript: setStageOptions(parent, { partitions: N })).`,
      { stage, replicas, max },
    );
  }
}

/** `--keda` asked for something the pipeline cannot give KEDA's Kafka scaler. */
export class DeployKedaUnsupportedError extends DeployError {
  constructor(why: string) {
    super(
      'DEPLOY_KEDA_UNSUPPORTED',
      `--keda cannot scale this pipeline: ${why}. Deploy without --keda (fixed --replicas).`,
    );
  }
}

/** A name the target cannot use even after escaping (a pipeline named only with punctuation). */
export class DeployNameInvalidError extends DeployError {
  constructor(what: string, name: string, rule: string) {
    super('DEPLOY_NAME_INVALID', `${what} "${name}" cannot be used: ${rule}.`, { name });
  }
}
