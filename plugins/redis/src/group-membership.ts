import type { Redis } from 'ioredis';

/**
 * Lease-based partition assignment for one consumer in a group.
 *
 * Redis consumer groups hand out entries of ONE stream to many consumers but have no
 * notion of a topic spread over several streams (partitions). So each consumer keeps a
 * lease in a sorted set per (group, topic) — member = consumer name, score = lease
 * expiry on the Redis clock — renewed every `heartbeatMs`. Every consumer computes the
 * same range assignment over the sorted live members (Kafka's RangeAssignor), so no
 * coordinator is needed:
 *   - a consumer joining or leaving (close) is seen by the others at their next
 *     heartbeat: reassignment within `heartbeatMs`;
 *   - a consumer that dies is dropped when its lease expires: within `leaseMs + heartbeatMs`.
 * Limits: there is no fencing. For up to one heartbeat two consumers may both believe
 * they own a partition; the Redis group still delivers each entry to one of them, so
 * nothing is duplicated by it, but per-key order can interleave across the two during
 * that window (the new owner waits `2 × heartbeatMs` before reading a partition it
 * gained while other members exist, which makes this unlikely).
 */

const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return { redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('HGET', KEYS[2], ARGV[4]) or '' }
`;

interface HeartbeatCommand {
  codefeedrGroupHeartbeat(
    membersKey: string,
    topicsKey: string,
    member: string,
    leaseMs: number,
    alive: '1' | '0',
    topic: string,
  ): Promise<[string[], string]>;
}

export function defineHeartbeatCommand(client: Redis): void {
  client.defineCommand('codefeedrGroupHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT_LUA });
}

/** Partitions of a `partitions`-partition topic that `member` owns under range assignment. */
export function rangeAssignment(
  partitions: number,
  members: readonly string[],
  member: string,
): number[] {
  const sorted = [...members].sort();
  const index = sorted.indexOf(member);
  if (index < 0 || partitions <= 0) return [];
  const base = Math.floor(partitions / sorted.length);
  const extra = partitions % sorted.length;
  const start = index * base + Math.min(index, extra);
  const count = base + (index < extra ? 1 : 0);
  return Array.from({ length: count }, (_, i) => start + i);
}

export interface TopicAssignment {
  topic: string;
  partitions: number[];
  /** Live members of the group for this topic, this one included. */
  members: number;
  /** maxLen etc. are not needed here; partitions count of the topic (0 when it does not exist yet). */
  topicPartitions: number;
}

export interface GroupMembershipOptions {
  client: Redis;
  membersKey(topic: string): string;
  topicsKey: string;
  member: string;
  topics: readonly string[];
  leaseMs: number;
  heartbeatMs: number;
  /** Called after every successful heartbeat with the current assignment of every topic. */
  onHeartbeat(assignments: readonly TopicAssignment[]): Promise<void> | void;
  /** Called when heartbeats failed for longer than the lease: the others have taken over. */
  onLeaseLost(): void;
}

export class GroupMembership {
  private timer: NodeJS.Timeout | undefined;
  /** Local time just before the last heartbeat that succeeded. */
  private lastBeatAt = 0;
  private beating: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: GroupMembershipOptions) {}

  /** Joins the group: the first heartbeat completes (and assigns) before this resolves. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.tick(), this.options.heartbeatMs);
    this.timer.unref();
  }

  /**
   * False once the last successful heartbeat is so old that the lease may be about to expire
   * (a stalled event loop, Redis unreachable): the consumer then stops claiming partitions
   * before anyone else can take them over (they wait a lease plus a settle time).
   */
  leaseFresh(now = Date.now()): boolean {
    return now - this.lastBeatAt < this.options.leaseMs - this.options.heartbeatMs;
  }

  /** Leaves the group so the others rebalance at their next heartbeat. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.beating?.catch(() => undefined);
    const { client, topicsKey, member, leaseMs, topics } = this.options;
    const commands = client as unknown as HeartbeatCommand;
    await Promise.all(
      topics.map((topic) =>
        commands.codefeedrGroupHeartbeat(
          this.options.membersKey(topic),
          topicsKey,
          member,
          leaseMs,
          '0',
          topic,
        ),
      ),
    ).catch(() => undefined); // the lease expires on its own if Redis is unreachable
  }

  private async tick(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = this.beat()
      .catch(() => {
        if (Date.now() - this.lastBeatAt > this.options.leaseMs) this.options.onLeaseLost();
      })
      .finally(() => {
        this.beating = undefined;
      });
  }

  private async beat(): Promise<void> {
    const { client, topicsKey, member, leaseMs, topics } = this.options;
    const commands = client as unknown as HeartbeatCommand;
    const started = Date.now();
    const replies = await Promise.all(
      topics.map((topic) =>
        commands.codefeedrGroupHeartbeat(
          this.options.membersKey(topic),
          topicsKey,
          member,
          leaseMs,
          '1',
          topic,
        ),
      ),
    );
    if (this.stopped) return;
    this.lastBeatAt = started;
    const assignments = topics.map((topic, i): TopicAssignment => {
      const [members, meta] = replies[i]!;
      const topicPartitions =
        meta === '' ? 0 : (JSON.parse(meta) as { partitions: number }).partitions;
      return {
        topic,
        partitions: rangeAssignment(topicPartitions, members, member),
        members: members.length,
        topicPartitions,
      };
    });
    await this.options.onHeartbeat(assignments);
  }
}
