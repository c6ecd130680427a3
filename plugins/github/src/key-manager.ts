import { createHash } from 'node:crypto';
import type { AcquiredKey, KeyManager, RateLimitState } from '@codefeedr/core';

interface KeyBudget {
  readonly key: string;
  /** Not the secret: the first 12 hex digits of its SHA-256, for logs. */
  readonly id: string;
  remaining: number;
  resetAt: number;
}

/**
 * A fixed list of tokens (core's KeyManager contract, in one process). Sticks to one token until GitHub reports it exhausted, then
 * rotates to the next one with budget left; a token whose reset time has passed is usable
 * again. Budgets are per process: use the Redis key manager to share them across workers.
 */
export class StaticKeyManager implements KeyManager {
  private readonly budgets: KeyBudget[];
  private current = 0;

  constructor(
    keys: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    this.budgets = [...new Set(keys)].map((key) => ({
      key,
      id: createHash('sha256').update(key).digest('hex').slice(0, 12),
      remaining: Number.POSITIVE_INFINITY,
      resetAt: 0,
    }));
  }

  get size(): number {
    return this.budgets.length;
  }

  async acquire(_target: string, calls = 1): Promise<AcquiredKey | undefined> {
    const now = this.now();
    for (let step = 0; step < this.budgets.length; step++) {
      const index = (this.current + step) % this.budgets.length;
      const budget = this.budgets[index]!;
      if (budget.resetAt <= now && budget.remaining < calls) {
        budget.remaining = Number.POSITIVE_INFINITY; // refilled; GitHub tells us the real figure next
      }
      if (budget.remaining >= calls) {
        this.current = index;
        budget.remaining -= calls;
        return {
          key: budget.key,
          id: budget.id,
          remainingCalls: budget.remaining,
          refreshAt: budget.resetAt,
        };
      }
    }
    return undefined;
  }

  reportRateLimit(_target: string, key: string, limit: RateLimitState): void {
    const budget = this.budgets.find((b) => b.key === key);
    if (!budget) return;
    budget.remaining = limit.remaining;
    budget.resetAt = limit.resetAt;
  }

  nextResetAt(): number | undefined {
    const now = this.now();
    const exhausted = this.budgets.filter((b) => b.remaining <= 0 && b.resetAt > now);
    if (exhausted.length === 0 || exhausted.length < this.budgets.length) return undefined;
    return Math.min(...exhausted.map((b) => b.resetAt));
  }
}
