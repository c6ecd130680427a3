import { SinkPositions } from './buffer-edge.js';
import type { Logger } from './logger.js';
import { murmur2Partition } from './murmur2.js';
import type { OperatorChain } from './operator-chain.js';
import type { StateFilter } from './operators.js';
import type { JsonValue } from './record.js';
import type { StateStore } from './state-store.js';

/** The partition of a `topic/partition` channel. */
export function partitionOfChannel(channel: string): number {
  return Number(channel.slice(channel.lastIndexOf('/') + 1));
}

/**
 * The keyed state of one transform stage on a buffer, sharded by its input partitions
 * (Kafka Streams' task per partition; Flink's key groups): a key belongs to the partition the
 * buffer's murmur2 partitioner puts it on, a channel to its partition number. The worker
 * owning a partition loads that shard before its records, saves it at each checkpoint with
 * the positions it reflects, and forgets it when the partition goes: state follows the data
 * to whichever worker reads it next.
 *
 * Keys are co-partitioned when the records' buffer key is the `keyBy` key (and every input
 * has the same partition count). A key held here that no owned partition covers (keyed by
 * something else, `windowAll`) is not in any shard: it stays in this worker's own checkpoint,
 * as all state did before shards, and a warning says so once.
 */
export class PartitionStateShards {
  /** Owned partition → the version of its shard this worker holds (0: none stored yet). */
  private readonly versions = new Map<number, number>();
  /** Per channel: the next offset already in the restored state (records before it are skipped). */
  private readonly restoredPositions: Record<string, string> = {};
  private warnedForeign = false;

  constructor(
    private readonly store: StateStore,
    private readonly pipeline: string,
    private readonly stage: string,
    /** Partitions of the stage's first input topic: where the buffer puts each key. */
    private readonly partitions: number,
    private readonly chain: OperatorChain,
    private readonly logger: Logger,
  ) {}

  /** The partitions whose state this worker holds. */
  owned(): number[] {
    return [...this.versions.keys()].sort((a, b) => a - b);
  }

  /** Records of `channel` at `offset` are already in the restored state when this is true. */
  readonly skip = new SinkPositions({});

  /** Keys and channels of `parts`. */
  filterFor(parts: ReadonlySet<number>): StateFilter {
    const partitions = this.partitions;
    return {
      key: (key) => parts.has(murmur2Partition(key, partitions)),
      channel: (channel) => parts.has(partitionOfChannel(channel)),
    };
  }

  /**
   * The assignment is now `assigned`: forget the state of partitions that went (their new
   * owner loads it from the store), load the state of those that came, before any record of
   * theirs is processed.
   */
  async reassign(assigned: ReadonlySet<number>): Promise<void> {
    const gone = new Set([...this.versions.keys()].filter((p) => !assigned.has(p)));
    if (gone.size > 0) {
      this.chain.dropState?.(this.filterFor(gone));
      for (const p of gone) this.versions.delete(p);
      for (const channel of Object.keys(this.restoredPositions))
        if (gone.has(partitionOfChannel(channel))) delete this.restoredPositions[channel];
    }
    for (const p of [...assigned].sort((a, b) => a - b)) {
      if (this.versions.has(p)) continue;
      const shard = await this.store.load(this.pipeline, this.stage, p);
      this.versions.set(p, shard?.version ?? 0);
      if (shard === undefined) continue;
      this.chain.restoreState(shard.state, true);
      Object.assign(this.restoredPositions, shard.positions);
      this.logger.info('restored partition state', {
        stage: this.stage,
        partition: p,
        version: shard.version,
        store: this.store.kind,
      });
    }
    this.skip.reset(this.restoredPositions);
  }

  /**
   * Saves every owned partition's shard with the positions (`topic/partition` → next offset)
   * it reflects. Taken at a batch boundary, before the positions are committed.
   */
  async save(positions: Readonly<Record<string, string>>): Promise<void> {
    const takenAt = Date.now();
    for (const [p, version] of [...this.versions]) {
      const own: Record<string, string> = {};
      for (const [channel, offset] of Object.entries(positions))
        if (partitionOfChannel(channel) === p) own[channel] = offset;
      const state = this.chain.snapshotState(this.filterFor(new Set([p])));
      const shard = { version: version + 1, takenAt, positions: own, state };
      await this.store.save(this.pipeline, this.stage, p, shard);
      this.versions.set(p, shard.version);
    }
  }

  /** State of keys in no owned partition, for the worker's own checkpoint (see the class note). */
  foreignState(): JsonValue {
    const owned = new Set(this.versions.keys());
    let foreignKeys = 0;
    const partitions = this.partitions;
    const state = this.chain.snapshotState({
      key: (key) => {
        const foreign = !owned.has(murmur2Partition(key, partitions));
        if (foreign) foreignKeys++;
        return foreign;
      },
      channel: (channel) => !owned.has(partitionOfChannel(channel)),
    });
    if (foreignKeys > 0 && !this.warnedForeign) {
      this.warnedForeign = true;
      this.logger.warn(
        'keyed state of keys that are not on this worker’s partitions stays with this worker (the keyBy key is not the records’ buffer key, or windowAll): it does not move on a rebalance. Key the upstream stage’s records by the keyBy key to shard it.',
        { stage: this.stage, keys: foreignKeys, partitions: this.owned() },
      );
    }
    return state;
  }
}
