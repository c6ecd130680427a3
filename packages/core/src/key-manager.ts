import { z } from 'zod';
import { parseConfig } from './component.js';

/**
 * A source of rate-limited API keys, with CodeFeedr's semantics: per-target keys with a call
 * limit per refresh interval; `acquire` atomically takes the best-fitting key (enough calls
 * left, the one that refreshes soonest) and charges it. Implemented by the GitHub plugin's
 * static list (one process), and by Redis and MongoDB (shared by every worker).
 *
 * Keys are the user's own tokens or GitHub App installations: GitHub's acceptable-use rules
 * forbid pooling other people's tokens to exceed rate limits.
 *
 * @example
 * const keys = await redisKeyManager.create({ url: 'redis://127.0.0.1:6379' });
 * const lease = await keys.acquire('github');   // undefined: every key is spent until nextResetAt
 */
export interface KeyManager {
  /** A key with at least `calls` (default 1) calls left, already charged for them; `undefined` if none has. */
  acquire(target: string, calls?: number): Promise<AcquiredKey | undefined>;
  /** Optional feedback from the API (e.g. GitHub's X-RateLimit-Remaining/Reset) about `key`. */
  reportRateLimit?(target: string, key: string, limit: RateLimitState): void | Promise<void>;
  /** Optional: when the earliest exhausted key of `target` refills (epoch ms), after an acquire found none. */
  nextResetAt?(target: string): number | undefined;
  /** Releases connections; a static key manager has none. */
  close?(): Promise<void>;
}

export interface RateLimitState {
  remaining: number;
  /** Epoch ms at which the budget refills. */
  resetAt: number;
}

export interface AcquiredKey {
  /** The secret itself. Never log it. */
  key: string;
  /** Stable id of the key (not the secret), for logs and metrics. */
  id: string;
  /** Calls left on this key after this acquisition. */
  remainingCalls: number;
  /** Epoch ms at which the key's calls return to its limit. */
  refreshAt: number;
}

/** A key a shared key manager is given to manage (config of the Redis and MongoDB ones). */
export interface ManagedKeySpec {
  /** The secret (an API token). */
  key: string;
  /** Calls allowed per interval. */
  limit: number;
  /** Length of the rate-limit window in ms (GitHub: 3,600,000). */
  intervalMs: number;
  /** Id to refer to the key by; default: the first 12 hex digits of its SHA-256. */
  id?: string;
}

/**
 * The `keys` config of a shared key manager: keys to register per target at start. One schema
 * for the Redis and MongoDB managers; each adds its own description.
 */
export const managedKeysSchema = z.record(
  z.string().min(1),
  z.array(
    z.object({
      key: z.string().min(1),
      limit: z.number().int().min(1),
      intervalMs: z.number().int().min(1),
      id: z.string().min(1).optional(),
    }),
  ),
);

/** What a shared key manager reports about one key (never the secret). */
export interface ManagedKeyInfo {
  id: string;
  limit: number;
  intervalMs: number;
  remainingCalls: number;
  refreshAt: number;
}

/** A key manager as plugins export it (kind `keymanager`): referenced from pipeline files' `resources:`. */
export interface KeyManagerComponent<Schema extends z.ZodType = z.ZodType> {
  readonly kind: 'keymanager';
  readonly name: string;
  readonly description: string;
  readonly configSchema: Schema;
  create(config?: z.input<Schema>): Promise<KeyManager>;
}

export function defineKeyManager<Schema extends z.ZodType>(spec: {
  name: string;
  description: string;
  configSchema: Schema;
  create(config: z.output<Schema>): KeyManager | Promise<KeyManager>;
}): KeyManagerComponent<Schema> {
  return {
    kind: 'keymanager',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    create: async (rawConfig) =>
      spec.create(parseConfig(`key manager ${spec.name}`, spec.configSchema, rawConfig)),
  };
}

/** Structural check: anything with `acquire` (a plugin may bring its own copy of core). */
export function isKeyManager(value: unknown): value is KeyManager {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as KeyManager).acquire === 'function'
  );
}
