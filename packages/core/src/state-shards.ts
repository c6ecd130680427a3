import { compareOffsets, SinkPositions } from './buffer-edge.js';
import type { TopicPartitionOffset } from './buffer.js';
import type { Logger } from './logger.js';
import { murmur2Partition } from './murmur2.js';
import type { OperatorChain } from './operator-chain.js';
import type { StateFilter } from './operators.js';
import type { JsonValue } from './record.js';
import type { StateShard, StateStore, StateWrite } from './state-store.js';

/**
 * With an incremental store, every this-many-th save of a partition is whole (the others are
 * deltas of the keys changed since the save before): a restore reads at most this many files,
 * and the deltas on disk stay within a few times the state they describe.
 */
export const WHOLE_SAVE_EVERY = 10;

/** How the shards call their store: `withRetries` for the stage, in the runtime. */
export type StoreCall = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

interface NextShard {
  partition: number;
  shard: StateShard;
  /** Deltas stored since the partition's last whole shard, before this one. */
  deltasBefore: number;
}

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
  /** Keys changed since the last save, when the store takes deltas (incremental checkpoints). */
  private readonly changed: Set<string> | undefined;
  /** Owned partition → deltas saved (or loaded) since its last whole shard. */
  private readonly deltasSinceWhole = new Map<number, number>();

  constructor(
    private readonly store: StateStore,
    private readonly pipeline: string,
    private readonly stage: string,
    /** Partitions of the stage's first input topic: where the buffer puts each key. */
    private readonly partitions: number,
    private readonly chain: OperatorChain,
    private readonly logger: Logger,
    /**
     * Exactly-once: the client id of the transactional producer whose transactions carry the
     * shards (`prepare`, and the claims `reassign` returns), on a store with transactions.
     */
    private readonly writer?: string,
    /** Runs each store call (load, save): the stage's retries of transient failures. */
    private readonly storeCall: StoreCall = (_operation, call) => call(),
    /**
     * Topics of broadcast inputs: every worker reads all their partitions, so their channels
     * belong to no partition's shard (broadcast-state.ts).
     */
    private readonly broadcastTopics: ReadonlySet<string> = new Set(),
  ) {
    if (writer !== undefined && store.transactions === undefined)
      throw new Error(`the ${store.kind} state store cannot write in transactions`);
    if (store.incremental === true && chain.dropState !== undefined)
      this.changed = chain.trackChangedKeys?.();
  }

  /** The partitions whose state this worker holds. */
  owned(): number[] {
    return [...this.versions.keys()].sort((a, b) => a - b);
  }

  /** Records of `channel` at `offset` are already in the restored state when this is true. */
  readonly skip = new SinkPositions({});
  /**
   * Per channel of an owned partition, the next offset its state reflects: the loaded shard's
   * position, then the consumer's after each batch (`observe`). Not the consumer's alone: it
   * forgets a partition the moment the group revokes it, before this worker's last save of its
   * shard, and it can start behind the state it loaded (the last owner saved, then died before
   * committing offsets) and skip up to it. A shard saved with positions behind its state tells
   * the next owner to count those records again.
   */
  private readonly reflected = new Map<string, string>();

  /**
   * After a batch: the consumer's positions, whose records are in the state now (processed, or
   * skipped as already in it). Kept per owned channel, never moving back.
   */
  observe(positions: readonly TopicPartitionOffset[]): void {
    for (const { topic, partition, offset } of positions) {
      if (!this.versions.has(partition)) continue;
      const channel = `${topic}/${partition}`;
      const held = this.reflected.get(channel);
      if (held === undefined || (compareOffsets(offset, held) ?? 1) > 0)
        this.reflected.set(channel, offset);
    }
  }

  /** The positions the state of the owned partitions reflects (see `reflected`), to save with it. */
  reflectedPositions(): TopicPartitionOffset[] {
    return [...this.reflected].map(([channel, offset]) => {
      const slash = channel.lastIndexOf('/');
      return {
        topic: channel.slice(0, slash),
        partition: Number(channel.slice(slash + 1)),
        offset,
      };
    });
  }

  /** The partition whose shard holds `channel`'s state; -1 for a broadcast input's channel. */
  private partitionOf(channel: string): number {
    if (this.broadcastTopics.size > 0) {
      const topic = channel.slice(0, channel.lastIndexOf('/'));
      if (this.broadcastTopics.has(topic)) return -1;
    }
    return partitionOfChannel(channel);
  }

  /** Keys and channels of `parts`. */
  filterFor(parts: ReadonlySet<number>): StateFilter {
    const partitions = this.partitions;
    return {
      key: (key) => parts.has(murmur2Partition(key, partitions)),
      channel: (channel) => parts.has(this.partitionOf(channel)),
    };
  }

  /**
   * The assignment is now `assigned`: forget the state of partitions that went (their new
   * owner loads it from the store), load the state of those that came, before any record of
   * theirs is processed. With a `writer`, returns the claims of the partitions that came: the
   * caller commits them in a transaction before processing any of their records.
   */
  async reassign(assigned: ReadonlySet<number>): Promise<StateWrite[]> {
    const claims: StateWrite[] = [];
    const gone = new Set([...this.versions.keys()].filter((p) => !assigned.has(p)));
    if (gone.size > 0) {
      this.chain.dropState?.(this.filterFor(gone));
      for (const p of gone) {
        this.versions.delete(p);
        this.deltasSinceWhole.delete(p);
      }
      for (const channel of Object.keys(this.restoredPositions))
        if (gone.has(partitionOfChannel(channel))) delete this.restoredPositions[channel];
      for (const channel of [...this.reflected.keys()])
        if (gone.has(partitionOfChannel(channel))) this.reflected.delete(channel);
    }
    for (const p of [...assigned].sort((a, b) => a - b)) {
      if (this.versions.has(p)) continue;
      let shard: StateShard | undefined;
      const writer = this.writer;
      if (writer === undefined)
        shard = await this.storeCall('state load', () =>
          this.store.load(this.pipeline, this.stage, p),
        );
      else {
        const loaded = await this.storeCall('state load', () =>
          this.store.transactions!.load(this.pipeline, this.stage, p, writer),
        );
        shard = loaded.shard;
        claims.push(loaded.claim);
      }
      // Nothing stored yet: the first save is whole.
      this.deltasSinceWhole.set(
        p,
        shard === undefined ? WHOLE_SAVE_EVERY : (shard.deltas?.length ?? 0),
      );
      if (shard === undefined) {
        this.versions.set(p, 0);
        continue;
      }
      // Due timers fire once the whole shard is in: a delta may have removed them.
      const deltas = shard.deltas ?? [];
      this.chain.restoreState(shard.state, true, deltas.length === 0);
      deltas.forEach((delta, i) => this.applyDelta(p, delta, i === deltas.length - 1));
      const last = deltas.at(-1) ?? shard;
      this.versions.set(p, last.version);
      Object.assign(this.restoredPositions, last.positions);
      for (const [channel, offset] of Object.entries(last.positions))
        this.reflected.set(channel, offset);
      this.logger.info('restored partition state', {
        stage: this.stage,
        partition: p,
        version: last.version,
        deltas: shard.deltas?.length ?? 0,
        store: this.store.kind,
      });
    }
    this.skip.reset(this.restoredPositions);
    return claims;
  }

  /**
   * Saves every owned partition's shard with the positions (`topic/partition` → next offset)
   * it reflects. Taken at a batch boundary, before the positions are committed.
   */
  async save(positions: Readonly<Record<string, string>>): Promise<void> {
    for (const next of this.nextShards(positions)) {
      await this.storeCall('state save', () =>
        this.store.save(this.pipeline, this.stage, next.partition, next.shard),
      );
      this.saved(next);
    }
    this.changed?.clear();
  }

  /**
   * Exactly-once: the writes of every owned partition's shard, to send in the transaction
   * that commits `positions`; `committed()` once it has.
   */
  async prepare(
    positions: Readonly<Record<string, string>>,
  ): Promise<{ writes: StateWrite[]; committed: () => void }> {
    const transactions = this.store.transactions!;
    const next = this.nextShards(positions);
    const writes: StateWrite[] = [];
    for (const { partition, shard } of next)
      writes.push(
        await transactions.write(this.pipeline, this.stage, partition, shard, this.writer!),
      );
    return {
      writes,
      committed: () => {
        for (const n of next) {
          transactions.committed(this.pipeline, this.stage, n.partition, n.shard);
          this.saved(n);
        }
        this.changed?.clear();
      },
    };
  }

  /**
   * The next shard of every owned partition: a delta of the keys changed since the last save
   * when the store takes deltas and the partition's last whole save is recent, else whole.
   */
  private nextShards(positions: Readonly<Record<string, string>>): NextShard[] {
    const takenAt = Date.now();
    const changedBy = this.changedByPartition();
    const next: NextShard[] = [];
    for (const [p, version] of [...this.versions]) {
      const own: Record<string, string> = {};
      for (const [channel, offset] of Object.entries(positions))
        if (partitionOfChannel(channel) === p) own[channel] = offset;
      const deltas = this.deltasSinceWhole.get(p) ?? WHOLE_SAVE_EVERY;
      const shard: StateShard = { version: version + 1, takenAt, positions: own, state: null };
      if (changedBy !== undefined && deltas < WHOLE_SAVE_EVERY) {
        const keys = changedBy.get(p) ?? [];
        const changed = new Set(keys);
        shard.state = this.chain.snapshotState({
          key: (key) => changed.has(key),
          channel: (channel) => this.partitionOf(channel) === p,
        });
        shard.changedKeys = keys;
      } else {
        shard.state = this.chain.snapshotState(this.filterFor(new Set([p])));
      }
      next.push({ partition: p, shard, deltasBefore: deltas });
    }
    return next;
  }

  /** `next` is stored: it is the version this worker holds. */
  private saved({ partition, shard, deltasBefore }: NextShard): void {
    this.versions.set(partition, shard.version);
    this.deltasSinceWhole.set(partition, shard.changedKeys === undefined ? 0 : deltasBefore + 1);
  }

  /** The keys changed since the last save, by partition (undefined: not tracked). */
  private changedByPartition(): Map<number, string[]> | undefined {
    if (this.changed === undefined) return undefined;
    const byPartition = new Map<number, string[]>();
    for (const key of this.changed) {
      const p = murmur2Partition(key, this.partitions);
      const keys = byPartition.get(p);
      if (keys === undefined) byPartition.set(p, [key]);
      else keys.push(key);
    }
    return byPartition;
  }

  /** Replaces the delta's keys and the partition's channels with the delta's state. */
  private applyDelta(p: number, delta: StateShard, fireDue: boolean): void {
    const keys = new Set(delta.changedKeys);
    this.chain.dropState!({
      key: (key) => keys.has(key),
      channel: (channel) => this.partitionOf(channel) === p,
    });
    this.chain.restoreState(delta.state, true, fireDue);
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
      channel: (channel) => !owned.has(this.partitionOf(channel)),
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
