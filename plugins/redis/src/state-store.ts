import {
  parseStateShard,
  StateFencedError,
  type StateShard,
  type StateStore,
} from '@codefeedr/core';
import type { Redis } from 'ioredis';
import type { RedisKeys } from './buffer.js';

/**
 * Compare-and-set of one shard: writes it only over the version the worker holds, so a worker
 * that lost the partition in a rebalance cannot overwrite its new owner's state. Returns -1 on
 * success, else the stored version. The version is a field of its own so the check does not
 * decode the shard.
 */
const SAVE_SHARD_LUA = `
local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':version') or '0')
if stored ~= tonumber(ARGV[2]) then return stored end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4], ARGV[1] .. ':version', ARGV[3])
return -1
`;

interface SaveShardCommand {
  codefeedrSaveShard(
    key: string,
    partition: number,
    expected: number,
    version: number,
    json: string,
  ): Promise<number>;
}

/**
 * Partition state shards on the buffer's Redis: one hash per stage,
 * `<prefix>:@state:<pipeline>:<stage>`, a field per partition (its JSON) and `<n>:version`.
 * Shared by every worker of the stage wherever it runs. At-least-once as the Redis buffer is:
 * a shard and the offsets it reflects are written one after the other, and a shard survives a
 * Redis restart only with Redis persistence (AOF or RDB) on.
 */
export class RedisStateStore implements StateStore {
  readonly kind = 'redis';

  constructor(
    private readonly client: Redis,
    private readonly keys: RedisKeys,
  ) {
    client.defineCommand('codefeedrSaveShard', { numberOfKeys: 1, lua: SAVE_SHARD_LUA });
  }

  async load(pipeline: string, stage: string, partition: number): Promise<StateShard | undefined> {
    const key = this.keys.state(pipeline, stage);
    const text = await this.client.hget(key, String(partition));
    return text === null ? undefined : parseStateShard(text, `${key} field ${partition}`);
  }

  async save(pipeline: string, stage: string, partition: number, shard: StateShard): Promise<void> {
    const stored = await (this.client as unknown as SaveShardCommand).codefeedrSaveShard(
      this.keys.state(pipeline, stage),
      partition,
      shard.version - 1,
      shard.version,
      JSON.stringify(shard),
    );
    if (stored !== -1) throw new StateFencedError(stage, partition, stored, shard.version - 1);
  }
}
