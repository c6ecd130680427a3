import { join } from 'node:path';
import { readFileIfExists, replaceFileAtomically, safeName } from './atomic-file.js';
import { CodefeedrError } from './errors.js';
import type { JsonValue } from './record.js';

/**
 * One state shard as stored: the keyed state, timers and watermarks of one buffer partition
 * of a stage (Kafka Streams' task state; Flink's key group), and the input positions it
 * reflects. Whoever owns the partition next restores it and skips the records it already holds.
 */
export interface StateShard {
  /** 1 for the first save, then one more per save: a save names the version it replaces. */
  version: number;
  takenAt: number;
  /** `topic/partition` → the next offset: records before it are in `state`. */
  positions: Record<string, string>;
  /** The chain's state for this partition's keys and channels (OperatorChain.snapshotState). */
  state: JsonValue;
}

/**
 * Where state shards live, shared by every worker of a stage: a worker assigned a partition
 * loads its shard before it processes any of its records. `file` (core) suits one machine or
 * a shared volume; a buffer may offer its own (`Buffer.stateStore`, e.g. Redis).
 */
export interface StateStore {
  /** `file`, `redis`, ...: for logs and docs. */
  readonly kind: string;
  load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined>;
  /**
   * Stores `shard` over version `shard.version - 1`, atomically; StateFencedError when the
   * stored version is another (a second worker wrote this partition's state meanwhile).
   */
  save(pipeline: string, stage: string, partition: number, shard: StateShard): Promise<void>;
  close?(): Promise<void>;
}

export class StateFencedError extends CodefeedrError {
  constructor(stage: string, partition: number, stored: number, expected: number) {
    super(
      'STATE_FENCED',
      `Stage "${stage}": the state of partition ${partition} is at version ${stored}, not ${expected} as this worker last read or wrote it: another worker owns the partition now (a rebalance raced this checkpoint). This worker stops so that nothing it holds overwrites newer state; restarted, it loads the stored state.`,
      { stage, partition, stored, expected },
    );
  }
}

export class StateShardCorruptError extends CodefeedrError {
  constructor(where: string, cause: unknown) {
    super(
      'CHECKPOINT_CORRUPT',
      `The state shard at ${where} cannot be read. Restore it from a backup, or delete it to restart that partition's keys from empty state.`,
      { where },
      { cause },
    );
  }
}

/** Parses a stored shard, or throws StateShardCorruptError naming `where`. */
export function parseStateShard(text: string, where: string): StateShard {
  try {
    const shard = JSON.parse(text) as StateShard;
    if (
      typeof shard.version !== 'number' ||
      typeof shard.positions !== 'object' ||
      shard.positions === null
    ) {
      throw new Error('missing version or positions');
    }
    return shard;
  } catch (error) {
    throw new StateShardCorruptError(where, error);
  }
}

/**
 * One JSON file per shard, `<dir>/<pipeline>/<stage>.state/partition-<n>.json`, replaced
 * atomically (write, fsync, rename). The version check reads then renames, which is atomic
 * only within one process: share the directory between the workers of one machine (or a
 * volume), and use a buffer's store (Redis) across machines.
 */
export class FileStateStore implements StateStore {
  readonly kind = 'file';

  constructor(readonly dir: string) {}

  fileFor(pipeline: string, stage: string, partition: number): string {
    return join(
      this.dir,
      safeName(pipeline),
      `${safeName(stage)}.state`,
      `partition-${partition}.json`,
    );
  }

  async load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined> {
    const file = this.fileFor(pipeline, stage, partition);
    const text = await readFileIfExists(file);
    return text === undefined ? undefined : parseStateShard(text, file);
  }

  async save(pipeline: string, stage: string, partition: number, shard: StateShard): Promise<void> {
    const stored = (await this.load(pipeline, stage, partition))?.version ?? 0;
    if (stored !== shard.version - 1)
      throw new StateFencedError(stage, partition, stored, shard.version - 1);
    const file = this.fileFor(pipeline, stage, partition);
    await replaceFileAtomically(file, `${file}.${process.pid}.tmp`, JSON.stringify(shard));
  }
}
