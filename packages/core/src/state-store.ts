import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileExclusively, readFileIfExists, safeName } from './atomic-file.js';
import type { BufferMessage } from './buffer.js';
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
  /**
   * Set on an incremental save (a delta): `state` holds only these keys, whole, and the
   * partition's channels; a listed key that `state` does not hold has no state left.
   */
  changedKeys?: string[];
  /**
   * From `load` of an incremental store: the deltas saved after this whole shard, oldest
   * first; the partition's version is then the last one's.
   */
  deltas?: StateShard[];
}

/**
 * Where state shards live, shared by every worker of a stage: a worker assigned a partition
 * loads its shard before it processes any of its records. `file` (core) suits one machine or
 * a shared volume; a buffer may offer its own (`Buffer.stateStore`, e.g. Redis).
 */
export interface StateStore {
  /** `file`, `redis`, ...: for logs and docs. */
  readonly kind: string;
  /**
   * True when `save` takes deltas (`changedKeys`) and `load` returns them after the last whole
   * shard: checkpoints then write what changed, not the partition's whole state.
   */
  readonly incremental?: boolean;
  /**
   * Present when shards can be written in the buffer's transactions, so that a stage's
   * outputs, its partitions' state and its consumer offsets commit together (exactly-once
   * with state). Kafka's store has it; a store on other servers cannot join Kafka's
   * transactions.
   */
  readonly transactions?: StateTransactions;
  load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined>;
  /**
   * Stores `shard` over version `shard.version - 1`, atomically; StateFencedError when the
   * stored version is another (a second worker wrote this partition's state meanwhile).
   */
  save(pipeline: string, stage: string, partition: number, shard: StateShard): Promise<void>;
  close?(): Promise<void>;
}

/** Records to send in a buffer transaction: the buffer's own messages, to one topic. */
export interface StateWrite {
  topic: string;
  messages: BufferMessage[];
}

/**
 * Shard writes that join the buffer's transactions (`StateStore.transactions`). `writer` is
 * the client id (ProducerOptions.clientId) of the transactional producer that sends the
 * writes: the store knows from it whose open transaction a new owner has to end.
 */
export interface StateTransactions {
  /**
   * Loads the partition's last committed shard as `writer`. First it ends whatever the
   * partition's previous writer left open (fencing that writer: Kafka aborts its open
   * transaction, and its next commit fails), so nothing committed later can be missing from
   * what is returned. `claim` must be committed by `writer` before any of the partition's
   * records is processed: whoever loads the partition next then knows to fence `writer`.
   */
  load(
    pipeline: string,
    stage: string,
    partition: number,
    writer: string,
  ): Promise<{ shard: StateShard | undefined; claim: StateWrite }>;
  /** The records that store `shard` (a version after the one last loaded or committed). */
  write(
    pipeline: string,
    stage: string,
    partition: number,
    shard: StateShard,
    writer: string,
  ): Promise<StateWrite>;
  /** The transaction that held `write(…, shard)` committed. */
  committed(pipeline: string, stage: string, partition: number, shard: StateShard): void;
}

/**
 * A buffer transaction failed because a newer producer with the same identity exists: another
 * worker fenced this one (it took over a partition this worker wrote last). What the
 * transaction held is aborted; the worker must reload its state before going on.
 */
export class TransactionFencedError extends CodefeedrError {
  constructor(clientId: string, cause?: unknown) {
    super(
      'TRANSACTION_FENCED',
      `The transactional producer "${clientId}" was fenced: another worker took over a partition whose state this one wrote last, and ended its open transaction. The transaction is aborted; the stage reloads its partitions' state and goes on from their committed positions.`,
      { clientId },
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * An exactly-once batch whose transaction was about to commit when a rebalance began: its
 * partitions may be another worker's already, so it is aborted and redone by whoever owns them
 * (Kafka's consumer commits before it gives partitions up for the same reason). The runtime
 * always recovers from it.
 */
export class TransactionRevokedError extends CodefeedrError {
  constructor(stage: string) {
    super(
      'TRANSACTION_REVOKED',
      `Stage "${stage}": a rebalance began before this batch's transaction committed, so the partitions it covers may belong to another worker now. The transaction is aborted; the stage reloads its partitions' state and goes on from their committed positions.`,
      { stage },
    );
  }
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
      `The state shard at ${where} cannot be read (${cause instanceof Error ? cause.message : String(cause)}). Restore it from a backup, or delete it to restart that partition's keys from empty state.`,
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

/** A file of the file store: `partition-<n>.<version>.json` (whole) or `….<version>.delta.json`. */
const SHARD_FILE = /^partition-(\d+)\.(\d+)(\.delta)?\.json$/;

interface ShardFile {
  name: string;
  version: number;
  delta: boolean;
}

/**
 * One JSON file per save, `<dir>/<pipeline>/<stage>.state/partition-<n>.<version>.json` for a
 * whole shard and `partition-<n>.<version>.delta.json` for a delta (incremental: what changed
 * since the save before). A load reads the last whole shard and the deltas after it; a whole
 * save removes the files before it. Each file is created exclusively (write, fsync, hard
 * link), so two workers saving one version never both succeed, also across processes of one
 * machine; share the directory between the workers of one machine (or a volume), and use a
 * buffer's store (Redis, Kafka) across machines. `partition-<n>.json` of earlier versions
 * loads as the whole shard it is.
 */
export class FileStateStore implements StateStore {
  readonly kind = 'file';
  readonly incremental = true;

  constructor(readonly dir: string) {}

  dirFor(pipeline: string, stage: string): string {
    return join(this.dir, safeName(pipeline), `${safeName(stage)}.state`);
  }

  /** The partition's files, by version (the legacy single file, if any, as version -1). */
  private async files(dir: string, partition: number): Promise<ShardFile[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const files: ShardFile[] = [];
    for (const name of names) {
      if (name === `partition-${partition}.json`) {
        files.push({ name, version: -1, delta: false });
        continue;
      }
      const match = SHARD_FILE.exec(name);
      if (match === null || Number(match[1]) !== partition) continue;
      files.push({ name, version: Number(match[2]), delta: match[3] !== undefined });
    }
    return files.sort((a, b) => a.version - b.version);
  }

  private async read(dir: string, file: ShardFile): Promise<StateShard> {
    const path = join(dir, file.name);
    const text = await readFileIfExists(path);
    if (text === undefined) throw new StateShardCorruptError(path, new Error('removed while read'));
    return parseStateShard(text, path);
  }

  async load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined> {
    const dir = this.dirFor(pipeline, stage);
    const files = await this.files(dir, partition);
    const whole = files.filter((f) => !f.delta);
    const base = whole.at(-1);
    if (base === undefined) {
      if (files.length > 0)
        throw new StateShardCorruptError(
          join(dir, files[0]!.name),
          new Error('a delta without the whole shard before it'),
        );
      return undefined;
    }
    const shard = await this.read(dir, base);
    const deltas: StateShard[] = [];
    let version = shard.version;
    for (const file of files) {
      if (!file.delta || file.version <= shard.version) continue;
      if (file.version !== version + 1)
        throw new StateShardCorruptError(
          join(dir, file.name),
          new Error(`version ${version + 1} is missing`),
        );
      deltas.push(await this.read(dir, file));
      version = file.version;
    }
    return deltas.length === 0 ? shard : { ...shard, deltas };
  }

  async save(pipeline: string, stage: string, partition: number, shard: StateShard): Promise<void> {
    const dir = this.dirFor(pipeline, stage);
    const files = await this.files(dir, partition);
    const last = files.at(-1);
    const stored =
      last === undefined
        ? 0
        : last.version === -1
          ? (await this.read(dir, last)).version
          : last.version;
    if (stored !== shard.version - 1)
      throw new StateFencedError(stage, partition, stored, shard.version - 1);
    const delta = shard.changedKeys !== undefined;
    const name = `partition-${partition}.${shard.version}${delta ? '.delta' : ''}.json`;
    const file = join(dir, name);
    const { deltas: _loaded, ...record } = shard; // what load added is not stored
    if (!(await createFileExclusively(file, `${file}.${process.pid}.tmp`, JSON.stringify(record))))
      throw new StateFencedError(stage, partition, shard.version, shard.version - 1);
    // A whole shard makes everything before it unneeded.
    if (!delta) for (const old of files) await rm(join(dir, old.name), { force: true });
  }
}
