/**
 * Hands out API tokens. The Redis key manager (@codefeedr/plugin-redis) has this shape,
 * so several workers can share one pool of tokens; StaticKeyManager is the in-process one.
 */
export interface KeyManager {
  /** A key with at least `calls` requests left for `target`, or undefined when none has. */
  acquire(target: string, calls?: number): Promise<{ key: string } | undefined>;
  /** Optional feedback after each response: what GitHub says is left on `key`. */
  reportRateLimit?(target: string, key: string, limit: RateLimitState): void | Promise<void>;
  /** Optional: when the earliest exhausted key refills (epoch ms), to wait no longer than needed. */
  nextResetAt?(target: string): number | undefined;
}

export interface RateLimitState {
  remaining: number;
  /** Epoch ms at which the budget refills (GitHub's X-RateLimit-Reset × 1000). */
  resetAt: number;
}

interface KeyBudget {
  readonly key: string;
  remaining: number;
  resetAt: number;
}

/**
 * A fixed list of tokens. Sticks to one token until GitHub reports it exhausted, then
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
      remaining: Number.POSITIVE_INFINITY,
      resetAt: 0,
    }));
  }

  get size(): number {
    return this.budgets.length;
  }

  async acquire(_target: string, calls = 1): Promise<{ key: string } | undefined> {
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
        return { key: budget.key };
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

export function isKeyManager(value: unknown): value is KeyManager {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as KeyManager).acquire === 'function'
  );
}
