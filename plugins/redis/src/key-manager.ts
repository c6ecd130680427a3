import { createHash } from 'node:crypto';
import {
  defineKeyManager,
  managedKeysSchema,
  z,
  type AcquiredKey,
  type KeyManager,
  type ManagedKeyInfo,
  type ManagedKeySpec,
  type RateLimitState,
} from '@codefeedr/core';
import type { Redis } from 'ioredis';
import { openRedis, redisUrlSchema } from './connection.js';
import { KeyRequestError } from './errors.js';

export const redisKeyManagerConfigSchema = z.object({
  url: redisUrlSchema,
  prefix: z
    .string()
    .regex(/^[^\s]+$/, 'no whitespace')
    .default('codefeedr:keymanager')
    .describe('Prefix of the Redis keys (one hash per target).'),
  keys: managedKeysSchema
    .optional()
    .describe(
      'Keys to register per target at start (e.g. { github: [{ key: "${GITHUB_TOKEN}", limit: 5000, intervalMs: 3600000 }] }). Existing keys keep their remaining calls.',
    ),
});

export type RedisKeyManagerConfig = z.output<typeof redisKeyManagerConfigSchema>;
export type RedisKeyManagerOptions = z.input<typeof redisKeyManagerConfigSchema>;

/**
 * Picks and charges a key in one step, so concurrent workers never spend the same calls.
 * Best fit = among keys with at least ARGV[1] calls left (after refreshing every key whose
 * window has passed), the one that refreshes soonest — its unused calls are lost soonest —
 * then the one with the fewest calls left (keeps big budgets for big requests, as
 * CodeFeedr did), then the smallest id (deterministic).
 * Windows stay aligned: a refreshed key's next refresh is a whole number of intervals later.
 */
const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local calls = tonumber(ARGV[1])
local entries = redis.call('HGETALL', KEYS[1])
local bestId, best
for i = 1, #entries, 2 do
  local k = cjson.decode(entries[i + 1])
  if now >= k.refreshAt then
    k.refreshAt = k.refreshAt + (math.floor((now - k.refreshAt) / k.intervalMs) + 1) * k.intervalMs
    k.remaining = k.limit
  end
  if k.remaining >= calls then
    if best == nil or k.refreshAt < best.refreshAt
      or (k.refreshAt == best.refreshAt and (k.remaining < best.remaining
        or (k.remaining == best.remaining and entries[i] < bestId))) then
      best = k
      bestId = entries[i]
    end
  end
end
if best == nil then
  local soonest = nil
  for i = 1, #entries, 2 do
    local k = cjson.decode(entries[i + 1])
    local refreshAt = k.refreshAt
    if now >= refreshAt then refreshAt = refreshAt + (math.floor((now - refreshAt) / k.intervalMs) + 1) * k.intervalMs end
    if soonest == nil or refreshAt < soonest then soonest = refreshAt end
  end
  return { soonest and tostring(soonest) or '' }
end
best.remaining = best.remaining - calls
redis.call('HSET', KEYS[1], bestId, cjson.encode(best))
return { bestId, best.key, tostring(best.remaining), tostring(best.refreshAt) }
`;

/** Adds or updates a key; an existing key keeps its window and remaining calls (capped at the new limit). */
const UPSERT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[3])
local intervalMs = tonumber(ARGV[4])
local current = redis.call('HGET', KEYS[1], ARGV[1])
local k
if current then
  k = cjson.decode(current)
  k.key = ARGV[2]
  k.limit = limit
  k.intervalMs = intervalMs
  if k.remaining > limit then k.remaining = limit end
else
  k = { key = ARGV[2], limit = limit, intervalMs = intervalMs, remaining = limit, refreshAt = now + intervalMs }
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(k))
return 1
`;

/**
 * What the API says about a key is the truth: its reset time is adopted; its remaining calls
 * replace ours when the API is already in a later window, else the lower figure wins (other
 * workers may hold calls charged here but not yet made, or the key is used elsewhere too).
 */
const REPORT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local remaining = tonumber(ARGV[2])
local resetAt = tonumber(ARGV[3])
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local k = cjson.decode(entries[i + 1])
  if k.key == ARGV[1] then
    if now >= k.refreshAt then
      k.refreshAt = k.refreshAt + (math.floor((now - k.refreshAt) / k.intervalMs) + 1) * k.intervalMs
      k.remaining = k.limit
    end
    if resetAt > k.refreshAt or remaining < k.remaining then k.remaining = remaining end
    if resetAt > now then k.refreshAt = resetAt end
    redis.call('HSET', KEYS[1], entries[i], cjson.encode(k))
    return 1
  end
end
return 0
`;

interface KeyManagerCommands {
  /** [id, key, remaining, refreshAt] when a key fits, else [soonest refreshAt or ''] */
  codefeedrAcquireKey(
    hash: string,
    calls: number,
  ): Promise<[string, string, string, string] | [string]>;
  codefeedrReportRateLimit(
    hash: string,
    key: string,
    remaining: number,
    resetAt: number,
  ): Promise<number>;
  codefeedrUpsertKey(
    hash: string,
    id: string,
    key: string,
    limit: number,
    intervalMs: number,
  ): Promise<number>;
}

interface StoredKey {
  key: string;
  limit: number;
  intervalMs: number;
  remaining: number;
  refreshAt: number;
}

/** Default key id: derived from the secret so re-registering the same key updates it, yet never reveals it. */
export function keyIdFor(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/**
 * CodeFeedr's Redis key manager: per-target API keys with call limits that refresh every
 * interval, shared by every worker through one Redis hash per target.
 */
export class RedisKeyManager implements KeyManager {
  private readonly commands: KeyManagerCommands;
  private readonly resets = new Map<string, number>();

  static async connect(options: RedisKeyManagerOptions = {}): Promise<RedisKeyManager> {
    const config = redisKeyManagerConfigSchema.parse(options);
    const client = await openRedis(config.url, 'codefeedr-keymanager');
    const manager = new RedisKeyManager(config, client);
    try {
      for (const [target, keys] of Object.entries(config.keys ?? {}))
        for (const key of keys) await manager.setKey(target, key);
    } catch (error) {
      client.disconnect();
      throw error;
    }
    return manager;
  }

  private constructor(
    readonly config: RedisKeyManagerConfig,
    private readonly client: Redis,
  ) {
    client.defineCommand('codefeedrAcquireKey', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    client.defineCommand('codefeedrUpsertKey', { numberOfKeys: 1, lua: UPSERT_LUA });
    client.defineCommand('codefeedrReportRateLimit', { numberOfKeys: 1, lua: REPORT_LUA });
    this.commands = client as unknown as KeyManagerCommands;
  }

  async acquire(target: string, calls = 1): Promise<AcquiredKey | undefined> {
    if (!Number.isInteger(calls) || calls < 1)
      throw new KeyRequestError(target, `calls must be a positive integer, got ${calls}`);
    const reply = await this.commands.codefeedrAcquireKey(this.hashKey(target), calls);
    if (reply.length === 1) {
      if (reply[0] === '') this.resets.delete(target);
      else this.resets.set(target, Number(reply[0]));
      return undefined;
    }
    this.resets.delete(target);
    const [id, key, remaining, refreshAt] = reply;
    return { id, key, remainingCalls: Number(remaining), refreshAt: Number(refreshAt) };
  }

  /** Feeds the API's own figures for `key` back (GitHub: X-RateLimit-Remaining and -Reset × 1000). */
  async reportRateLimit(target: string, key: string, limit: RateLimitState): Promise<void> {
    if (!Number.isFinite(limit.remaining) || !Number.isFinite(limit.resetAt))
      throw new KeyRequestError(
        target,
        'the reported rate limit needs finite remaining and resetAt',
      );
    await this.commands.codefeedrReportRateLimit(
      this.hashKey(target),
      key,
      Math.max(0, Math.floor(limit.remaining)),
      Math.floor(limit.resetAt),
    );
  }

  /** When the earliest key of `target` refills, as seen by this process's last acquire that found none. */
  nextResetAt(target: string): number | undefined {
    return this.resets.get(target);
  }

  /** Registers `spec.key` for `target`, or updates its limit and interval. Returns the key's id. */
  async setKey(target: string, spec: ManagedKeySpec): Promise<string> {
    if (!Number.isInteger(spec.limit) || spec.limit < 1)
      throw new KeyRequestError(target, `limit must be a positive integer, got ${spec.limit}`);
    if (!Number.isInteger(spec.intervalMs) || spec.intervalMs < 1)
      throw new KeyRequestError(
        target,
        `intervalMs must be a positive integer, got ${spec.intervalMs}`,
      );
    const id = spec.id ?? keyIdFor(spec.key);
    await this.commands.codefeedrUpsertKey(
      this.hashKey(target),
      id,
      spec.key,
      spec.limit,
      spec.intervalMs,
    );
    return id;
  }

  async removeKey(target: string, id: string): Promise<boolean> {
    return (await this.client.hdel(this.hashKey(target), id)) === 1;
  }

  /** The keys of a target without their secrets. Remaining calls are as of their last use. */
  async listKeys(target: string): Promise<ManagedKeyInfo[]> {
    const entries = await this.client.hgetall(this.hashKey(target));
    return Object.entries(entries)
      .map(([id, encoded]) => {
        const stored = JSON.parse(encoded) as StoredKey;
        const refreshed = Date.now() >= stored.refreshAt;
        return {
          id,
          limit: stored.limit,
          intervalMs: stored.intervalMs,
          remainingCalls: refreshed ? stored.limit : stored.remaining,
          refreshAt: stored.refreshAt,
        };
      })
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }

  private hashKey(target: string): string {
    return `${this.config.prefix}:${target}`;
  }
}

/** The `keymanager` component of @codefeedr/plugin-redis. */
export const redisKeyManager = defineKeyManager({
  name: 'keymanager',
  description:
    'API keys with call limits and refresh intervals, shared by all workers through Redis.',
  configSchema: redisKeyManagerConfigSchema,
  create: (config) => RedisKeyManager.connect(config),
});
