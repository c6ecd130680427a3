import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  defineKeyManager,
  managedKeysSchema,
  registerSecret,
  z,
  type AcquiredKey,
  type KeyManager,
  type ManagedKeyInfo,
  type ManagedKeySpec,
  type RateLimitState,
} from '@codefeedr/core';
import { MongoServerError, type Collection } from 'mongodb';
import { mongoConnectionConfigSchema, openMongo, type MongoConnection } from './connection.js';
import {
  KeyContentionError,
  KeyRequestError,
  MongoClientClosedError,
  mongoOperationError,
} from './errors.js';

export const mongoKeyManagerConfigSchema = mongoConnectionConfigSchema.extend({
  collection: z
    .string()
    .min(1)
    .regex(/^[^$\0]+$/, 'no $ or NUL')
    .default('codefeedr_keys')
    .describe('Collection of the keys; their charges go to `<collection>_charges`.'),
  keys: managedKeysSchema
    .optional()
    .describe(
      'Keys to register per target at start (e.g. { github: [{ key: "${GITHUB_TOKEN}", limit: 5000, intervalMs: 3600000 }] }). Existing keys keep the calls already charged in their window.',
    ),
});

export type MongoKeyManagerConfig = z.output<typeof mongoKeyManagerConfigSchema>;
export type MongoKeyManagerOptions = z.input<typeof mongoKeyManagerConfigSchema>;

interface KeyDocument {
  _id: string;
  target: string;
  keyId: string;
  key: string;
  limit: number;
  intervalMs: number;
  /** Windows end at anchor + k × intervalMs (the first one at anchor). */
  anchor: number;
}

/** One charge: calls [start, end) of a key's window. Its _id makes each start unique. */
interface ChargeDocument {
  _id: string;
  target: string;
  keyId: string;
  /** End of the window (epoch ms), which is also when the key refreshes. */
  window: number;
  start: number;
  end: number;
}

interface KeyState {
  doc: KeyDocument;
  window: number;
  used: number;
  remaining: number;
}

const DUPLICATE_KEY = 11000;
/** Attempts of an acquire that keeps losing races to other workers before it gives up (retryably). */
const MAX_ATTEMPTS = 200;

/** Default key id: derived from the secret so re-registering the same key updates it, yet never reveals it. */
export function keyIdFor(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** When the window holding `now` ends: windows stay aligned to the key's anchor. */
function windowEnd(doc: KeyDocument, now: number): number {
  if (now < doc.anchor) return doc.anchor;
  return doc.anchor + (Math.floor((now - doc.anchor) / doc.intervalMs) + 1) * doc.intervalMs;
}

function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

/**
 * CodeFeedr's key manager on MongoDB: per-target API keys with call limits that refresh
 * every interval, shared by every worker through two collections.
 *
 * Why a ledger of charges rather than one findOneAndUpdate that decrements a counter: on
 * FerretDB 1.x updates are not atomic (200 concurrent `$inc`s on one document apply a
 * handful; a compare-and-set updateOne lets several writers "win"), so a counter would be
 * overspent. Inserts are atomic on every server because `_id` is unique. A charge of `n`
 * calls takes calls [used, used + n) of a key's window and its `_id` is (target, key,
 * window, used): two workers that saw the same `used` collide, one insert fails, and that
 * worker reads again and retries. Charges therefore form one gap-free chain per window whose
 * end never passes the limit. Best fit is CodeFeedr's (and the Redis manager's): among keys
 * with enough calls left, the one that refreshes soonest, then the one with fewest calls
 * left, then the smallest id.
 */
export class MongoKeyManager implements KeyManager {
  private readonly resets = new Map<string, number>();
  /** One acquire per target at a time in this process: its own acquires never race each other. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private closed = false;

  static async connect(options: MongoKeyManagerOptions = {}): Promise<MongoKeyManager> {
    const config = mongoKeyManagerConfigSchema.parse(options);
    const connection = await openMongo(config);
    const manager = new MongoKeyManager(config, connection);
    try {
      await manager.keysCollection.createIndex({ target: 1 });
      await manager.charges.createIndex({ target: 1, keyId: 1, window: 1, end: -1 });
      for (const [target, keys] of Object.entries(config.keys ?? {}))
        for (const key of keys) await manager.setKey(target, key);
    } catch (error) {
      await connection.client.close().catch(() => undefined);
      throw manager.failure('setup', error);
    }
    return manager;
  }

  private readonly keysCollection: Collection<KeyDocument>;
  private readonly charges: Collection<ChargeDocument>;

  private constructor(
    readonly config: MongoKeyManagerConfig,
    private readonly connection: MongoConnection,
  ) {
    this.keysCollection = connection.db.collection<KeyDocument>(config.collection);
    this.charges = connection.db.collection<ChargeDocument>(`${config.collection}_charges`);
  }

  /** The server's clock (as of connect), so workers on machines with skewed clocks agree on windows. */
  private now(): number {
    return Date.now() + this.connection.clockOffsetMs;
  }

  acquire(target: string, calls = 1): Promise<AcquiredKey | undefined> {
    if (!Number.isInteger(calls) || calls < 1)
      return Promise.reject(
        new KeyRequestError(target, `calls must be a positive integer, got ${calls}`),
      );
    const previous = this.queues.get(target) ?? Promise.resolve();
    const next = previous.then(
      () => this.take(target, calls),
      () => this.take(target, calls),
    );
    this.queues.set(target, next);
    return next;
  }

  private async take(target: string, calls: number): Promise<AcquiredKey | undefined> {
    if (this.closed) throw new MongoClientClosedError('key manager');
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.now();
      const states = await this.states(target, now);
      const fitting = states
        .filter((s) => s.remaining >= calls)
        .sort(
          (a, b) =>
            a.window - b.window ||
            a.remaining - b.remaining ||
            (a.doc.keyId < b.doc.keyId ? -1 : a.doc.keyId > b.doc.keyId ? 1 : 0),
        );
      const best = fitting[0];
      if (best === undefined) {
        if (states.length === 0) this.resets.delete(target);
        else this.resets.set(target, Math.min(...states.map((s) => s.window)));
        return undefined;
      }
      if (await this.charge(best, best.used + calls)) {
        this.resets.delete(target);
        if (best.used === 0) await this.dropPastWindows(best);
        registerSecret(best.doc.key);
        return {
          key: best.doc.key,
          id: best.doc.keyId,
          remainingCalls: best.remaining - calls,
          refreshAt: best.window,
        };
      }
      // Another worker charged that key first: read again, after a little jitter.
      await delay(Math.random() * Math.min(attempt, 10));
    }
    throw new KeyContentionError(target, MAX_ATTEMPTS);
  }

  /** Inserts the charge [state.used, end) of the state's window; false when another worker took that start. */
  private async charge(state: KeyState, end: number): Promise<boolean> {
    const { target, keyId } = state.doc;
    try {
      await this.charges.insertOne({
        _id: JSON.stringify([target, keyId, state.window, state.used]),
        target,
        keyId,
        window: state.window,
        start: state.used,
        end,
      });
      return true;
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw this.failure('insert charge', error);
    }
  }

  private async dropPastWindows(state: KeyState): Promise<void> {
    await this.charges
      .deleteMany({
        target: state.doc.target,
        keyId: state.doc.keyId,
        window: { $lt: state.window },
      })
      .catch(() => undefined); // only housekeeping: old windows never count
  }

  private async states(target: string, now: number): Promise<KeyState[]> {
    try {
      const docs = await this.keysCollection.find({ target }).toArray();
      return await Promise.all(docs.map((doc) => this.state(doc, now)));
    } catch (error) {
      throw this.failure('read keys', error);
    }
  }

  private async state(doc: KeyDocument, now: number): Promise<KeyState> {
    const window = windowEnd(doc, now);
    const tip = await this.charges.findOne(
      { target: doc.target, keyId: doc.keyId, window },
      { sort: { end: -1 }, projection: { end: 1 } },
    );
    const used = tip?.end ?? 0;
    return { doc, window, used, remaining: Math.max(0, doc.limit - used) };
  }

  /**
   * Feeds the API's own figures for `key` back (GitHub: X-RateLimit-Remaining and -Reset ×
   * 1000). As in the Redis manager: its reset time is adopted; its remaining calls replace
   * ours when the API is already in a later window, else the lower figure wins.
   */
  async reportRateLimit(target: string, key: string, limit: RateLimitState): Promise<void> {
    if (!Number.isFinite(limit.remaining) || !Number.isFinite(limit.resetAt))
      throw new KeyRequestError(
        target,
        'the reported rate limit needs finite remaining and resetAt',
      );
    if (this.closed) throw new MongoClientClosedError('key manager');
    const remaining = Math.max(0, Math.floor(limit.remaining));
    const resetAt = Math.floor(limit.resetAt);
    let doc: KeyDocument | null;
    try {
      doc = await this.keysCollection.findOne({ target, key });
    } catch (error) {
      throw this.failure('read keys', error);
    }
    if (doc === null) return;
    const now = this.now();
    const current = await this.state(doc, now);
    const desired = resetAt > current.window ? remaining : Math.min(current.remaining, remaining);
    let state = current;
    if (resetAt > now && resetAt !== current.window) {
      // Windows now end at the API's reset time (and every interval after it).
      try {
        await this.keysCollection.updateOne({ _id: doc._id }, { $set: { anchor: resetAt } });
      } catch (error) {
        throw this.failure('update key', error);
      }
      doc = { ...doc, anchor: resetAt };
      state = await this.state(doc, now);
    }
    // Charge what the API says is spent already, on top of whatever is charged in the window.
    for (let attempt = 0; state.remaining > desired && attempt < MAX_ATTEMPTS; attempt++) {
      if (await this.charge(state, doc.limit - desired)) return;
      state = await this.state(doc, now);
    }
  }

  /** When the earliest key of `target` refills, as seen by this process's last acquire that found none. */
  nextResetAt(target: string): number | undefined {
    return this.resets.get(target);
  }

  /**
   * Registers `spec.key` for `target`, or updates its secret, limit and interval. Returns the
   * key's id. Calls already charged in the current window still count: lowering the limit
   * below them leaves none until the window ends (the API counts the calls made, too).
   */
  async setKey(target: string, spec: ManagedKeySpec): Promise<string> {
    if (!Number.isInteger(spec.limit) || spec.limit < 1)
      throw new KeyRequestError(target, `limit must be a positive integer, got ${spec.limit}`);
    if (!Number.isInteger(spec.intervalMs) || spec.intervalMs < 1)
      throw new KeyRequestError(
        target,
        `intervalMs must be a positive integer, got ${spec.intervalMs}`,
      );
    registerSecret(spec.key);
    const id = spec.id ?? keyIdFor(spec.key);
    const update = {
      $set: { target, keyId: id, key: spec.key, limit: spec.limit, intervalMs: spec.intervalMs },
      $setOnInsert: { anchor: this.now() + spec.intervalMs },
    };
    const _id = JSON.stringify([target, id]);
    try {
      await this.keysCollection.updateOne({ _id }, update, { upsert: true });
    } catch (error) {
      // Two workers registered the same key at once; the other one inserted it.
      if (!isDuplicateKey(error)) throw this.failure('register key', error);
      await this.keysCollection.updateOne({ _id }, { $set: update.$set });
    }
    return id;
  }

  async removeKey(target: string, id: string): Promise<boolean> {
    try {
      const { deletedCount } = await this.keysCollection.deleteOne({
        _id: JSON.stringify([target, id]),
      });
      await this.charges.deleteMany({ target, keyId: id });
      return deletedCount === 1;
    } catch (error) {
      throw this.failure('remove key', error);
    }
  }

  /** The keys of a target without their secrets. */
  async listKeys(target: string): Promise<ManagedKeyInfo[]> {
    const states = await this.states(target, this.now());
    return states
      .map((s) => ({
        id: s.doc.keyId,
        limit: s.doc.limit,
        intervalMs: s.doc.intervalMs,
        remainingCalls: s.remaining,
        refreshAt: s.window,
      }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connection.client.close().catch(() => undefined);
  }

  private failure(operation: string, error: unknown) {
    const c = this.connection;
    return mongoOperationError(
      operation,
      `${c.db.databaseName}.${this.config.collection}`,
      c.hosts,
      c.timeoutMs,
      error,
    );
  }
}

/** The `keymanager` component of @codefeedr/plugin-mongodb. */
export const mongoKeyManager = defineKeyManager({
  name: 'keymanager',
  description:
    'API keys with call limits and refresh intervals, shared by all workers through MongoDB (atomic on FerretDB too).',
  configSchema: mongoKeyManagerConfigSchema,
  create: (config) => MongoKeyManager.connect(config),
});
