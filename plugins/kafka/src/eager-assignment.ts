import type { TopicPartition, TopicPartitionOffset } from '@codefeedr/core';
import { KafkaCommitFailedError } from './errors.js';

export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** What a new assignment changes: partitions taken away, and partitions given to this consumer. */
export interface AssignmentChange {
  revoked: string[];
  fresh: TopicPartition[];
}

/**
 * What one consumer of a group owns under Kafka's eager (classic) rebalance protocol, as
 * both clients' consumers report it: from the start of a rebalance until the next assignment
 * it owns nothing (every member revokes everything first), so no partition ever has two
 * reported owners; commits wait for the assignment that ends a rebalance.
 */
export class EagerAssignment {
  private assigned: TopicPartition[] = [];
  private keys = new Set<string>();
  private rebalancingNow = true;
  private joins = 0;
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(private readonly onChange?: (assigned: readonly TopicPartition[]) => void) {}

  get rebalancing(): boolean {
    return this.rebalancingNow;
  }

  /** Assignments received so far. */
  get joinCount(): number {
    return this.joins;
  }

  /** The partitions of the last assignment (also while a rebalance is under way). */
  get partitions(): readonly TopicPartition[] {
    return this.assigned;
  }

  owns(key: string): boolean {
    return this.keys.has(key);
  }

  /** What this consumer reports: nothing while a rebalance is under way. */
  assignment(): TopicPartition[] {
    return this.rebalancingNow ? [] : this.assigned.map((tp) => ({ ...tp }));
  }

  /** A rebalance began (or the consumer left): ownership ends here. */
  revokeAll(): void {
    if (this.rebalancingNow) return;
    this.rebalancingNow = true;
    this.onChange?.([]);
  }

  /** What `next` would change, before the consumer applies it (`joined`). */
  diff(next: readonly TopicPartition[]): AssignmentChange {
    const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
    return {
      revoked: [...this.keys].filter((key) => !nextKeys.has(key)),
      fresh: next.filter((tp) => !this.keys.has(tpKey(tp.topic, tp.partition))),
    };
  }

  /** The group's new assignment is this consumer's: reported, and waiting commits go on. */
  joined(next: readonly TopicPartition[]): void {
    this.assigned = next.map((tp) => ({ ...tp }));
    this.keys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
    this.rebalancingNow = false;
    this.joins++;
    const due = this.waiters.filter((w) => w.count <= this.joins);
    this.waiters = this.waiters.filter((w) => w.count > this.joins);
    for (const waiter of due) waiter.resolve();
    this.onChange?.(this.assignment());
  }

  /** Resolves once `count` assignments have been received (or the deadline passes). */
  waitForJoin(count: number, timeoutMs: number): Promise<void> {
    if (this.joins >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { count, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Commits the `positions` (read again after each wait) of the partitions still owned (a revoked partition's commit belongs to
   * its new owner), waiting out a rebalance first; a commit refused because the group is
   * rebalancing (`isRebalanceError`) is tried again after the next assignment, up to 5 times.
   */
  async commitOwned(
    group: string,
    positions: () => readonly TopicPartitionOffset[],
    commit: (owned: TopicPartitionOffset[]) => Promise<void>,
    isRebalanceError: (error: unknown) => boolean,
    timeouts: { rebalanceTimeoutMs: number; sessionTimeoutMs: number },
  ): Promise<void> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.rebalancingNow) await this.waitForJoin(this.joins + 1, timeouts.rebalanceTimeoutMs);
      const owned = positions().filter((p) => this.keys.has(tpKey(p.topic, p.partition)));
      if (owned.length === 0) return;
      try {
        await commit(owned);
        return;
      } catch (error) {
        lastError = error;
        if (!isRebalanceError(error)) break;
        await this.waitForJoin(this.joins + 1, timeouts.sessionTimeoutMs);
      }
    }
    throw new KafkaCommitFailedError(group, lastError);
  }
}
