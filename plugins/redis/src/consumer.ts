import type {
  BufferConsumer,
  ConsumedMessage,
  ConsumerOptions,
  StartPosition,
  TopicPartition,
  TopicPartitionOffset,
} from '@codefeedr/core';
import type { Redis } from 'ioredis';
import type { RedisBuffer } from './buffer.js';
import { openRedis } from './connection.js';
import { RedisClientClosedError } from './errors.js';
import { GroupMembership, type TopicAssignment } from './group-membership.js';
import {
  compareStreamIds,
  formatStreamId,
  lastIdBeforeTimestamp,
  nextStreamId,
  parseStreamId,
  type StreamId,
} from './stream-id.js';

/** One bounded step of the event-time scan: ['found', id] | ['end', lastId] | ['more', lastId]. */
export const FIND_TIMESTAMP_LUA = `
local target = tonumber(ARGV[1])
local cursor = ARGV[2]
local budget = tonumber(ARGV[3])
local last = ''
while budget > 0 do
  local entries = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', 200)
  if #entries == 0 then return { 'end', last } end
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local t = nil
    for i = 1, #fields, 2 do
      if fields[i] == 't' then t = tonumber(fields[i + 1]) break end
    end
    if t == nil then t = tonumber(string.match(entry[1], '^(%d+)')) end
    if t >= target then return { 'found', entry[1] } end
    last = entry[1]
  end
  budget = budget - #entries
  cursor = '(' .. last
end
return { 'more', last }
`;

/**
 * Deletes consumers with no pending entries idle longer than ARGV[2] ms from a group, except
 * ARGV[3]; only ARGV[4] when given. Harmless to a live consumer: Redis re-creates it on its next read.
 */
export const PRUNE_CONSUMERS_LUA = `
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #consumer, 2 do
    if consumer[i] == 'name' then name = consumer[i + 1]
    elseif consumer[i] == 'pending' then pending = consumer[i + 1]
    elseif consumer[i] == 'idle' then idle = consumer[i + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[2]) and name ~= ARGV[3] and (ARGV[4] == '' or name == ARGV[4]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed = removed + 1
  end
end
return removed
`;

interface PruneConsumersCommand {
  codefeedrPruneConsumers(
    stream: string,
    group: string,
    minIdleMs: number,
    keep: string,
    only: string,
  ): unknown;
}

interface FindTimestampCommand {
  codefeedrFindTimestamp(
    stream: string,
    timestamp: number,
    cursor: string,
    budget: number,
  ): Promise<[string, string]>;
}

type RawFields = globalThis.Buffer[] | null;
type RawEntry = [globalThis.Buffer, RawFields];

/** Header set on a message made from a stream entry that was not written by this buffer. */
export const MALFORMED_ENTRY_HEADER = 'x-codefeedr-redis-malformed';

/** Entries handed out by poll and not yet acknowledged, in delivery order. */
interface Delivered {
  id: string;
  /** Position reported after this entry was delivered: strictly increasing per partition. */
  position: StreamId;
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  readonly stream: string;
  owned: boolean;
  groupReady: boolean;
  /** Not read before this time: a previous owner gets two heartbeats to notice and let go. */
  readableAt: number;
  /** Owned and past its settle time, as of the last heartbeat: what assignment() reports and poll reads. */
  effective: boolean;
  /** Own pending entries and idle entries of dead consumers are read before any new entry. */
  recovering: boolean;
  ownPendingCursor: string;
  claimCursor: string;
  nextClaimAt: number;
  delivered: Delivered[];
  position: StreamId | undefined;
}

export interface RedisStreamsConsumerInit {
  buffer: RedisBuffer;
  client: Redis;
  name: string;
  options: ConsumerOptions;
  onClose(): void;
}

/** Where a consumer group starts in a stream it has never read (XGROUP CREATE's id). */
function groupStartId(start: StartPosition | undefined): string {
  if (start === undefined || start === 'committed' || start === 'earliest') return '0';
  if (start === 'latest') return '$';
  return lastIdBeforeTimestamp(start.timestamp);
}

/**
 * A member of a Redis consumer group over every partition stream of its topics.
 * Reads with XREADGROUP on a connection of its own (BLOCK would stall other commands),
 * acknowledges with XACK on commit, reclaims idle entries of dead consumers with XAUTOCLAIM.
 */
export class RedisStreamsConsumer implements BufferConsumer {
  private readonly partitions = new Map<string, PartitionState>();
  private readonly byStream = new Map<string, PartitionState>();
  private membership!: GroupMembership;
  /** Entries read but not yet returned (a multi-stream read can overshoot maxRecords slightly). */
  private held: ConsumedMessage[] = [];
  /** A read still in flight when a poll was aborted; its entries are returned by the next poll. */
  private carried: Promise<ConsumedMessage[]> | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  /** Entries not yet delivered to the group, per owned partition, as of the last heartbeat. */
  private lagByStream = new Map<string, number | undefined>();
  private readonly group: string;

  static async start(init: RedisStreamsConsumerInit): Promise<RedisStreamsConsumer> {
    const reader = await openRedis(init.buffer.config.url, `codefeedr-consumer-${init.name}`);
    const consumer = new RedisStreamsConsumer(init, reader);
    try {
      await consumer.membership.start();
    } catch (error) {
      reader.disconnect();
      throw error;
    }
    return consumer;
  }

  private constructor(
    private readonly init: RedisStreamsConsumerInit,
    private readonly reader: Redis,
  ) {
    this.group = init.options.group;
    const { buffer } = init;
    this.membership = new GroupMembership({
      client: init.client,
      membersKey: (topic) => buffer.keys.members(this.group, topic),
      topicsKey: buffer.keys.topics,
      member: init.name,
      topics: [...new Set(init.options.topics)],
      leaseMs: buffer.config.leaseMs,
      heartbeatMs: buffer.config.heartbeatMs,
      onHeartbeat: (assignments) => this.applyAssignment(assignments),
      onLeaseLost: () => void this.applyAssignment([]),
    });
  }

  get name(): string {
    return this.init.name;
  }

  async poll(
    maxRecords: number,
    maxWaitMs: number,
    signal?: AbortSignal,
  ): Promise<ConsumedMessage[]> {
    if (this.closed) throw new RedisClientClosedError('consumer');
    if (maxRecords <= 0) return [];
    if (this.carried) {
      const carried = this.carried;
      this.carried = undefined;
      this.held.push(...(await carried));
    }
    const deadline = Date.now() + Math.max(0, maxWaitMs);
    for (;;) {
      if (this.held.length > 0) return this.deliver(this.held.splice(0, maxRecords));
      const recovered = await this.recover(maxRecords);
      if (recovered.length > 0) return this.deliver(recovered);
      const now = Date.now();
      const fresh = this.membership.leaseFresh();
      const readable = [...this.partitions.values()].filter(
        (p) => fresh && p.effective && p.groupReady && !p.recovering,
      );
      const waitMs = Math.min(deadline - now, this.init.buffer.config.heartbeatMs);
      if (signal?.aborted || this.closed) return [];
      if (readable.length === 0) {
        if (waitMs <= 0) return [];
        await this.waitForAssignment(waitMs, signal);
        continue;
      }
      const read = this.readNew(readable, maxRecords, Math.max(0, waitMs));
      const messages = signal ? await this.unlessAborted(read, signal) : await read;
      if (messages === undefined || this.closed) return [];
      if (messages.length > 0) {
        this.held.push(...messages);
        continue;
      }
      if (Date.now() >= deadline) return [];
    }
  }

  positions(): TopicPartitionOffset[] {
    const positions: TopicPartitionOffset[] = [];
    for (const p of this.partitions.values()) {
      // Revoked partitions with unacknowledged entries are included so the default commit still acks them.
      if (p.position && (p.owned || p.delivered.length > 0))
        positions.push({
          topic: p.topic,
          partition: p.partition,
          offset: formatStreamId(p.position),
        });
    }
    return positions;
  }

  async commit(positions: readonly TopicPartitionOffset[] = this.positions()): Promise<void> {
    const pipeline = this.init.client.pipeline();
    const acks: { state: PartitionState; acked: Delivered[] }[] = [];
    for (const position of positions) {
      const state = this.partitions.get(partitionKey(position.topic, position.partition));
      const upTo = parseStreamId(position.offset);
      if (!state || !upTo || state.delivered.length === 0) continue;
      let count = 0;
      while (
        count < state.delivered.length &&
        compareStreamIds(state.delivered[count]!.position, upTo) <= 0
      )
        count++;
      if (count === 0) continue;
      const acked = state.delivered.splice(0, count);
      pipeline.xack(state.stream, this.group, ...acked.map((entry) => entry.id));
      acks.push({ state, acked });
    }
    if (acks.length === 0) return;
    // On failure the entries stay ours to acknowledge: the caller can commit again.
    const restore = (i: number) => acks[i]!.state.delivered.unshift(...acks[i]!.acked);
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (error) {
      acks.forEach((_, i) => restore(i));
      throw error;
    }
    let firstError: Error | undefined;
    (results ?? []).forEach(([error], i) => {
      if (!error) return;
      restore(i);
      firstError ??= error;
    });
    if (firstError) throw firstError;
  }

  /** Entries of the assigned partitions not yet delivered to the group (XINFO GROUPS lag), as of the last heartbeat. */
  lag(): number | undefined {
    let total = 0;
    for (const tp of this.assignment()) {
      const lag = this.lagByStream.get(this.init.buffer.keys.stream(tp.topic, tp.partition));
      if (lag === undefined) return undefined;
      total += lag;
    }
    return total;
  }

  /** Partitions this consumer owns and reads; a gained partition joins after its settle time. */
  assignment(): TopicPartition[] {
    if (!this.membership.leaseFresh()) return [];
    return [...this.partitions.values()]
      .filter((p) => p.effective)
      .map((p) => ({ topic: p.topic, partition: p.partition }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    await this.membership.stop();
    // Unacknowledged entries become claimable by the next owner at once instead of after claimMinIdleMs.
    const pipeline = this.init.client.pipeline();
    for (const p of this.partitions.values()) {
      if (p.delivered.length === 0) continue;
      const ids = p.delivered.map((entry) => entry.id);
      pipeline.call('XCLAIM', [
        p.stream,
        this.group,
        this.init.name,
        0,
        ...ids,
        'IDLE',
        2 ** 31,
        'JUSTID',
      ]);
    }
    // And this consumer leaves the groups' consumer lists where it holds nothing.
    const prune = pipeline as unknown as PruneConsumersCommand;
    for (const p of this.partitions.values())
      if (p.groupReady) prune.codefeedrPruneConsumers(p.stream, this.group, -1, '', this.init.name);
    await pipeline.exec().catch(() => undefined);
    this.reader.disconnect();
    this.init.onClose();
  }

  // --- assignment ------------------------------------------------------------------

  private async applyAssignment(assignments: readonly TopicAssignment[]): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    const owned = new Set<string>();
    for (const assignment of assignments) {
      const settleMs = assignment.members > 1 ? 2 * this.init.buffer.config.heartbeatMs : 0;
      for (const partition of assignment.partitions) {
        const key = partitionKey(assignment.topic, partition);
        owned.add(key);
        let state = this.partitions.get(key);
        if (!state) {
          const stream = this.init.buffer.keys.stream(assignment.topic, partition);
          state = {
            topic: assignment.topic,
            partition,
            stream,
            owned: false,
            groupReady: false,
            readableAt: 0,
            effective: false,
            recovering: false,
            ownPendingCursor: '0',
            claimCursor: '0-0',
            nextClaimAt: 0,
            delivered: [],
            position: undefined,
          };
          this.partitions.set(key, state);
          this.byStream.set(stream, state);
        }
        if (!state.owned) {
          state.owned = true;
          state.readableAt = now + settleMs;
          state.recovering = true;
          state.ownPendingCursor = '0';
          state.claimCursor = '0-0';
        }
      }
    }
    for (const [key, state] of this.partitions) {
      if (state.owned && !owned.has(key)) state.owned = false;
    }
    // Also retries groups whose creation failed before, and groups of deleted-then-recreated topics.
    await this.ensureGroups([...this.partitions.values()].filter((p) => p.owned && !p.groupReady));
    // Flags and the callback change together (no await between), so assignment() and
    // onAssignmentChange always agree. Gains take effect after their settle time.
    let changed = false;
    for (const state of this.partitions.values()) {
      const effective = state.owned && state.readableAt <= now;
      if (effective !== state.effective) {
        state.effective = effective;
        changed = true;
      }
    }
    if (changed) {
      this.init.options.onAssignmentChange?.(this.assignment());
      this.wake?.();
    }
    await this.refreshLag();
  }

  private async refreshLag(): Promise<void> {
    const streams = [...this.partitions.values()]
      .filter((p) => p.owned && p.groupReady)
      .map((p) => p.stream);
    const pipeline = this.init.client.pipeline();
    for (const stream of streams) pipeline.xinfo('GROUPS', stream);
    const replies = streams.length > 0 ? ((await pipeline.exec()) ?? []) : [];
    const lags = new Map<string, number | undefined>();
    replies.forEach(([error, reply], i) => {
      if (error) return;
      for (const info of reply as unknown[][]) {
        const fields = new Map<unknown, unknown>();
        for (let f = 0; f + 1 < info.length; f += 2) fields.set(info[f], info[f + 1]);
        // Redis reports no lag (nil) when it cannot tell, e.g. after entries were deleted mid-stream.
        const lag = fields.get('lag');
        if (fields.get('name') === this.group)
          lags.set(streams[i]!, typeof lag === 'number' ? lag : undefined);
      }
    });
    this.lagByStream = lags;
  }

  private async ensureGroups(states: readonly PartitionState[]): Promise<void> {
    if (states.length === 0) return;
    const start = this.init.options.start;
    const startIds =
      typeof start === 'object'
        ? await Promise.all(
            states.map((state) => this.lastIdBeforeEventTime(state.stream, start.timestamp)),
          )
        : states.map(() => groupStartId(start));
    const pipeline = this.init.client.pipeline();
    states.forEach((state, i) =>
      pipeline.xgroup('CREATE', state.stream, this.group, startIds[i]!, 'MKSTREAM'),
    );
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([error], i) => {
      if (!error || String((error as Error).message).startsWith('BUSYGROUP'))
        states[i]!.groupReady = true;
    });
  }

  /**
   * Kafka's offsetsForTimes on a stream: the group starts before the first entry whose event
   * time (field t) is >= `timestamp`. Entries appended more than timestampSkewMs before
   * `timestamp` are assumed older and skipped without reading (stream ids are append times).
   * Only runs when a group is created for a partition. Scans in bounded Lua steps.
   */
  private async lastIdBeforeEventTime(stream: string, timestamp: number): Promise<string> {
    const scanFrom = Math.max(0, Math.floor(timestamp) - this.init.buffer.config.timestampSkewMs);
    const commands = this.init.client as unknown as FindTimestampCommand;
    let cursor = scanFrom > 0 ? `${scanFrom}-0` : '-';
    let lastBefore = scanFrom > 0 ? lastIdBeforeTimestamp(scanFrom) : '0';
    for (;;) {
      const [status, id] = await commands.codefeedrFindTimestamp(stream, timestamp, cursor, 10_000);
      if (status === 'found') return idBefore(id);
      if (id !== '') lastBefore = id;
      if (status === 'end') return lastBefore;
      cursor = `(${id}`;
    }
  }

  private waitForAssignment(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  // --- reading ---------------------------------------------------------------------

  /**
   * Before a gained partition is read with `>`: this consumer's own pending entries (a
   * restart under the same name), then entries idle longer than claimMinIdleMs in other
   * consumers' pending lists (a dead or departed owner). Afterwards the idle scan repeats
   * every claimIntervalMs.
   */
  private async recover(maxRecords: number): Promise<ConsumedMessage[]> {
    const now = Date.now();
    const out: ConsumedMessage[] = [];
    for (const p of this.partitions.values()) {
      if (out.length >= maxRecords) break;
      if (!p.effective || !p.groupReady || !this.membership.leaseFresh()) continue;
      if (!p.recovering && p.nextClaimAt > now) continue;
      try {
        await this.recoverPartition(p, maxRecords - out.length, out, now);
      } catch (error) {
        if (this.closed) break;
        if (!isNoGroupError(error)) throw error;
        p.groupReady = false; // the stream was deleted: the next heartbeat recreates the group
      }
    }
    return out;
  }

  private async recoverPartition(
    p: PartitionState,
    budget: number,
    out: ConsumedMessage[],
    now: number,
  ): Promise<void> {
    const { claimMinIdleMs, claimIntervalMs } = this.init.buffer.config;
    if (p.recovering && p.ownPendingCursor !== '') {
      const reply = (await this.reader.callBuffer('XREADGROUP', [
        'GROUP',
        this.group,
        this.init.name,
        'COUNT',
        budget,
        'STREAMS',
        p.stream,
        p.ownPendingCursor,
      ])) as [globalThis.Buffer, RawEntry[]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) p.ownPendingCursor = '';
      else {
        p.ownPendingCursor = entries[entries.length - 1]![0].toString();
        this.collect(p, entries, out, true);
        return;
      }
    }
    const [cursor, entries] = (await this.reader.callBuffer('XAUTOCLAIM', [
      p.stream,
      this.group,
      this.init.name,
      claimMinIdleMs,
      p.claimCursor,
      'COUNT',
      budget,
    ])) as [globalThis.Buffer, RawEntry[], globalThis.Buffer[]];
    p.claimCursor = cursor.toString();
    this.collect(p, entries, out, true);
    if (p.claimCursor === '0-0') {
      // A full pass over the pending list is done. Consumers that died holding nothing would
      // stay listed in the group for ever: drop those silent for longer than a lease.
      p.recovering = false;
      p.nextClaimAt = now + claimIntervalMs;
      await (this.init.client as unknown as PruneConsumersCommand).codefeedrPruneConsumers(
        p.stream,
        this.group,
        this.init.buffer.config.leaseMs,
        this.init.name,
        '',
      );
    }
  }

  private async readNew(
    readable: readonly PartitionState[],
    maxRecords: number,
    blockMs: number,
  ): Promise<ConsumedMessage[]> {
    const out: ConsumedMessage[] = [];
    let streams = readable;
    // COUNT applies per stream: split the budget, then top up from streams that filled theirs.
    for (let round = 0; round < 4 && streams.length > 0 && out.length < maxRecords; round++) {
      const count = Math.ceil((maxRecords - out.length) / streams.length);
      const args: (string | number)[] = ['GROUP', this.group, this.init.name, 'COUNT', count];
      if (round === 0 && blockMs > 0) args.push('BLOCK', blockMs);
      args.push('STREAMS', ...streams.map((p) => p.stream), ...streams.map(() => '>'));
      let reply: [globalThis.Buffer, RawEntry[]][] | null;
      try {
        reply = (await this.reader.callBuffer('XREADGROUP', args)) as typeof reply;
      } catch (error) {
        if (this.closed) return out;
        if (isNoGroupError(error)) {
          // The stream was deleted (deleteTopic): recreate the group before reading again.
          for (const p of streams) p.groupReady = false;
          await this.ensureGroups(streams);
          return out;
        }
        throw error;
      }
      if (!reply) break;
      const full: PartitionState[] = [];
      for (const [streamKey, entries] of reply) {
        const state = this.byStream.get(streamKey.toString());
        if (!state) continue;
        this.collect(state, entries, out, false);
        if (entries.length >= count) full.push(state);
      }
      streams = full;
    }
    return out;
  }

  /**
   * Decodes entries into `out`. `recovered` entries (own pending, XAUTOCLAIM) may include ones
   * this consumer delivered and still has in flight; those are skipped, not handed out twice.
   */
  private collect(
    state: PartitionState,
    entries: readonly RawEntry[],
    out: ConsumedMessage[],
    recovered: boolean,
  ): void {
    const inFlight = recovered ? new Set(state.delivered.map((entry) => entry.id)) : undefined;
    for (const [rawId, fields] of entries) {
      // Null fields: the entry was trimmed (MAXLEN) after delivery; there is nothing left to return.
      if (fields === null) continue;
      const id = rawId.toString();
      if (inFlight?.has(id)) continue;
      out.push(decodeEntry(state.topic, state.partition, id, fields));
    }
  }

  /** Records delivery (for positions and acks) as messages leave poll. */
  private deliver(messages: ConsumedMessage[]): ConsumedMessage[] {
    let state: PartitionState | undefined;
    for (const message of messages) {
      // Batches come mostly partition by partition: look the state up only when it changes.
      if (state?.partition !== message.partition || state.topic !== message.topic)
        state = this.partitions.get(partitionKey(message.topic, message.partition));
      if (!state) continue;
      const after = nextStreamId(parseStreamId(message.offset)!);
      // Strictly increasing even when a reclaimed (older) entry is delivered after newer ones,
      // so a position taken earlier never acknowledges an entry delivered later.
      const position =
        state.position && compareStreamIds(after, state.position) <= 0
          ? nextStreamId(state.position)
          : after;
      state.position = position;
      state.delivered.push({ id: message.offset, position });
    }
    return messages;
  }

  private async unlessAborted(
    read: Promise<ConsumedMessage[]>,
    signal: AbortSignal,
  ): Promise<ConsumedMessage[] | undefined> {
    if (signal.aborted) {
      this.carried = read.catch(() => []); // entries it took stay pending and are reclaimed
      return undefined;
    }
    let onAbort: () => void = () => {};
    const aborted = new Promise<undefined>((resolve) => {
      onAbort = () => resolve(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const result = await Promise.race([read, aborted]);
    signal.removeEventListener('abort', onAbort);
    if (result === undefined) this.carried = read.catch(() => []);
    return result;
  }
}

function isNoGroupError(error: unknown): boolean {
  return String((error as Error)?.message).startsWith('NOGROUP');
}

/** The greatest stream id below `id`. */
function idBefore(id: string): string {
  const parsed = parseStreamId(id)!;
  if (parsed.seq > 0) return `${parsed.ms}-${parsed.seq - 1}`;
  return parsed.ms > 0 ? lastIdBeforeTimestamp(parsed.ms) : '0';
}

function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

function decodeEntry(
  topic: string,
  partition: number,
  id: string,
  fields: globalThis.Buffer[],
): ConsumedMessage {
  let value: Uint8Array | undefined;
  let timestamp: number | undefined;
  let key: string | undefined;
  let headers: Record<string, string> | undefined;
  let malformed: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const field = fields[i + 1]!;
    if (name.length !== 1) continue;
    switch (name[0]) {
      case 0x76: // v
        value = field;
        break;
      case 0x74: // t
        timestamp = Number(field.toString());
        break;
      case 0x6b: // k
        key = field.toString();
        break;
      case 0x68: // h
        try {
          headers = JSON.parse(field.toString()) as Record<string, string>;
        } catch {
          malformed = 'headers field h is not JSON';
        }
        break;
    }
  }
  if (value === undefined) {
    // Not written by this buffer: hand the raw fields on so the serde fails and the stage dead-letters it.
    const raw: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2)
      raw[fields[i]!.toString()] = fields[i + 1]!.toString();
    value = globalThis.Buffer.from(JSON.stringify(raw));
    malformed = 'entry has no value field v';
  }
  if (timestamp === undefined || !Number.isFinite(timestamp))
    timestamp = Number(id.slice(0, id.indexOf('-')));
  if (malformed) headers = { ...headers, [MALFORMED_ENTRY_HEADER]: malformed };
  const message: ConsumedMessage = { topic, partition, offset: id, value, timestamp };
  if (key !== undefined) message.key = key;
  if (headers !== undefined) message.headers = headers;
  return message;
}
