import { setTimeout as delay } from 'node:timers/promises';
import {
  Any,
  badSourceRecord,
  defineInput,
  z,
  type JsonValue,
  type Source,
  type StreamRecord,
} from '@codefeedr/core';
import {
  BSON,
  MongoServerError,
  ObjectId,
  type ChangeStream,
  type ChangeStreamDocument,
  type Collection,
  type Document,
  type Filter,
} from 'mongodb';
import { mongoConnectionConfigSchema, openMongo, type MongoConnection } from './connection.js';
import {
  MongoChangeStreamsUnsupportedError,
  MongoClientClosedError,
  MongoSetupError,
  mongoOperationError,
} from './errors.js';
import { fieldPath, readPath } from './field-path.js';

export const mongoInputConfigSchema = mongoConnectionConfigSchema.extend({
  collection: z.string().min(1).describe('Collection to read.'),
  orderBy: z
    .string()
    .min(1)
    .default('_id')
    .describe(
      'Field the collection is read in ascending order of (ties broken by _id); it must only grow as documents are added (an ObjectId from one writer, a sequence number, an insert time). Documents without it are not read.',
    ),
  filter: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Only documents matching this query (Extended JSON, e.g. { "type": "PushEvent" }).'),
  follow: z
    .boolean()
    .default(false)
    .describe(
      'false: read what the collection holds at start, then end (bounded); true: keep polling for new documents.',
    ),
  pollIntervalMs: z
    .number()
    .int()
    .positive()
    .default(1_000)
    .describe('How long a poll that found nothing new waits before the next (follow mode).'),
  keyField: z
    .string()
    .min(1)
    .optional()
    .describe('Dot path of the field used as the record key; default: the _id.'),
  timestampField: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Dot path of the event time (a date, ISO string or epoch ms); default: the _id ObjectId’s creation time, else the time read.',
    ),
  changeStream: z
    .boolean()
    .default(false)
    .describe(
      'Follow the collection’s change stream instead of polling (needs a replica set; FerretDB has none). Implies follow.',
    ),
});

export type MongoInputConfig = z.output<typeof mongoInputConfigSchema>;
export type MongoInputOptions = z.input<typeof mongoInputConfigSchema>;

/** Header telling what a change-stream record is (insert, update, replace, delete). */
export const MONGODB_OPERATION_HEADER = 'codefeedr-mongodb-operation';

/** A point in (orderBy, _id) order. */
type Cursor = { value: unknown; id: unknown };

const NOT_IMPLEMENTED = 238; // FerretDB
const CHANGE_STREAMS_NEED_REPLICA_SET = 40573; // a standalone mongod

function toJson(value: unknown): JsonValue {
  return BSON.EJSON.serialize(value, { relaxed: false }) as JsonValue;
}

function fromJson(value: unknown): unknown {
  return BSON.EJSON.deserialize(value as Document, { relaxed: false });
}

function keyString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (value instanceof ObjectId) return value.toHexString();
  return BSON.EJSON.stringify(value, { relaxed: true });
}

/**
 * Reads a collection in (orderBy, _id) order, a batch per query (CodeFeedr's MongoInput). The
 * position is the last (orderBy, _id) pair returned, in canonical Extended JSON so ObjectIds
 * and dates survive the checkpoint; a restored source reads strictly after it. Bounded mode
 * fixes its end at the first poll (the last document then), so a run ends even while
 * writers keep adding; the end is part of the position, so a restarted run ends there too.
 *
 * Documents become Extended JSON values ({"$oid": …}, {"$date": …}), which JSON buffers
 * carry losslessly and mongo-output turns back into BSON types.
 */
export class MongoInputSource implements Source<unknown> {
  private connection: MongoConnection | undefined;
  private collection: Collection<Document> | undefined;
  private after: Cursor | undefined;
  /** Bounded mode: the last document to read; null once known to be "nothing to read". */
  private until: Cursor | null | undefined;
  private resumeToken: unknown;
  private stream: ChangeStream<Document> | undefined;
  private closed = false;
  private readonly filter: Filter<Document>;
  private readonly keyPath: readonly string[] | undefined;
  private readonly timePath: readonly string[] | undefined;
  private readonly orderPath: readonly string[];
  private readonly target: string;

  constructor(private readonly config: MongoInputConfig) {
    this.target = `${config.database}.${config.collection}`;
    try {
      this.filter = (
        config.filter === undefined ? {} : fromJson(config.filter)
      ) as Filter<Document>;
    } catch (error) {
      throw new MongoSetupError(
        this.target,
        `\`filter\` is not valid Extended JSON: ${(error as Error).message}`,
      );
    }
    this.keyPath = config.keyField === undefined ? undefined : fieldPath(config.keyField);
    this.timePath =
      config.timestampField === undefined ? undefined : fieldPath(config.timestampField);
    this.orderPath = fieldPath(config.orderBy);
  }

  async open(): Promise<void> {
    this.connection = await openMongo(this.config);
    this.collection = this.connection.db.collection(this.config.collection);
    if (this.config.changeStream) {
      try {
        await this.checkChangeStreams();
      } catch (error) {
        await this.connection.client.close().catch(() => undefined);
        throw error;
      }
    }
  }

  /** Opens a change stream once, so a server without them fails at start with a clear error. */
  private async checkChangeStreams(): Promise<void> {
    const probe = this.collection!.watch([], { maxAwaitTimeMS: 1 });
    try {
      await probe.tryNext();
    } catch (error) {
      if (
        error instanceof MongoServerError &&
        (error.code === NOT_IMPLEMENTED || error.code === CHANGE_STREAMS_NEED_REPLICA_SET)
      )
        throw new MongoChangeStreamsUnsupportedError(this.connection!.server, this.target, error);
      throw this.failure('watch', error);
    } finally {
      await probe.close().catch(() => undefined);
    }
  }

  async poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<unknown>[] | null> {
    if (this.closed || this.collection === undefined) throw new MongoClientClosedError('input');
    if (this.config.changeStream) return this.pollChanges(maxRecords);
    if (!this.config.follow && this.until === undefined) this.until = await this.lastDocument();
    if (this.until === null) return null;
    let docs: Document[];
    try {
      docs = await this.collection
        .find(this.rangeQuery(), { sort: { [this.config.orderBy]: 1, _id: 1 }, limit: maxRecords })
        .toArray();
    } catch (error) {
      throw this.failure('find', error);
    }
    if (docs.length === 0) {
      if (!this.config.follow) return null;
      // Rejects on abort: a stopping stage falls through its wait.
      await delay(this.config.pollIntervalMs, undefined, { signal }).catch(() => undefined);
      return [];
    }
    const last = docs[docs.length - 1]!;
    this.after = { value: readPath(last, this.orderPath), id: last._id };
    return docs.map((doc) => this.toRecord(doc));
  }

  private async pollChanges(maxRecords: number): Promise<StreamRecord<unknown>[]> {
    this.stream ??= this.collection!.watch([], {
      fullDocument: 'updateLookup',
      maxAwaitTimeMS: this.config.pollIntervalMs,
      ...(this.resumeToken === undefined ? {} : { startAfter: this.resumeToken }),
    });
    const out: StreamRecord<unknown>[] = [];
    try {
      while (out.length < maxRecords) {
        const change: ChangeStreamDocument<Document> | null = await this.stream.tryNext();
        if (change === null) break;
        this.resumeToken = this.stream.resumeToken;
        if (!('documentKey' in change)) continue; // drop/rename/invalidate: no document
        const doc =
          'fullDocument' in change && change.fullDocument
            ? change.fullDocument
            : change.documentKey;
        out.push(this.toRecord(doc, { [MONGODB_OPERATION_HEADER]: change.operationType }));
      }
    } catch (error) {
      await this.stream.close().catch(() => undefined);
      this.stream = undefined; // reopened from the resume token by the next poll
      throw this.failure('change stream', error);
    }
    return out;
  }

  private async lastDocument(): Promise<Cursor | null> {
    try {
      const query =
        this.config.orderBy === '_id'
          ? this.filter
          : { $and: [this.filter, { [this.config.orderBy]: { $ne: null } }] };
      const [last] = await this.collection!.find(query, {
        sort: { [this.config.orderBy]: -1, _id: -1 },
        limit: 1,
        projection: { [this.config.orderBy]: 1, _id: 1 },
      }).toArray();
      return last === undefined ? null : { value: readPath(last, this.orderPath), id: last._id };
    } catch (error) {
      throw this.failure('find', error);
    }
  }

  /** filter AND after `after` AND up to `until`, in (orderBy, _id) order. */
  private rangeQuery(): Filter<Document> {
    const field = this.config.orderBy;
    const parts: Document[] = [];
    if (Object.keys(this.filter).length > 0) parts.push(this.filter);
    const { after, until } = this;
    // A document without the field (or with null) has no place in the order: it is not read.
    if (field !== '_id') parts.push({ [field]: { $ne: null } });
    if (after !== undefined)
      parts.push(
        field === '_id'
          ? { _id: { $gt: after.id } }
          : {
              $or: [
                { [field]: { $gt: after.value } },
                { [field]: after.value, _id: { $gt: after.id } },
              ],
            },
      );
    if (until)
      parts.push(
        field === '_id'
          ? { _id: { $lte: until.id } }
          : {
              $or: [
                { [field]: { $lt: until.value } },
                { [field]: until.value, _id: { $lte: until.id } },
              ],
            },
      );
    return (
      parts.length === 0 ? {} : parts.length === 1 ? parts[0]! : { $and: parts }
    ) as Filter<Document>;
  }

  private toRecord(doc: Document, headers?: Record<string, string>): StreamRecord<unknown> {
    const value = BSON.EJSON.serialize(doc, { relaxed: true }) as Record<string, unknown>;
    const key = keyString(this.keyPath === undefined ? doc._id : readPath(doc, this.keyPath));
    let timestamp: number;
    if (this.timePath !== undefined) {
      const field = readPath(doc, this.timePath);
      timestamp =
        field instanceof Date
          ? field.getTime()
          : typeof field === 'number'
            ? field
            : typeof field === 'string'
              ? Date.parse(field)
              : NaN;
      if (!Number.isFinite(timestamp))
        return badSourceRecord(
          JSON.stringify(value),
          `${this.target} document ${keyString(doc._id)}: field "${this.config.timestampField}" is ${field === undefined ? 'missing' : `not a date (${BSON.EJSON.stringify(field)})`}. The document went to the dead-letter topic; fix timestampField or the document.`,
          Date.now(),
          headers,
        );
    } else {
      timestamp = doc._id instanceof ObjectId ? doc._id.getTimestamp().getTime() : Date.now();
    }
    return { key, value, timestamp, headers };
  }

  position(): JsonValue {
    if (this.config.changeStream)
      return { resumeToken: this.resumeToken === undefined ? null : toJson(this.resumeToken) };
    const cursor = (c: Cursor | null | undefined): JsonValue =>
      c === undefined
        ? null
        : c === null
          ? 'empty'
          : { value: toJson(c.value ?? null), id: toJson(c.id) };
    return { after: cursor(this.after), until: this.config.follow ? null : cursor(this.until) };
  }

  restore(position: JsonValue): void {
    const p = (position ?? {}) as Record<string, JsonValue>;
    if (this.config.changeStream) {
      this.resumeToken =
        p.resumeToken === null || p.resumeToken === undefined ? undefined : fromJson(p.resumeToken);
      return;
    }
    const cursor = (c: JsonValue | undefined): Cursor | null | undefined => {
      if (c === undefined || c === null) return undefined;
      if (c === 'empty') return null;
      const { value, id } = c as { value: JsonValue; id: JsonValue };
      return { value: fromJson(value), id: fromJson(id) };
    };
    this.after = cursor(p.after) ?? undefined;
    if (!this.config.follow) this.until = p.until === undefined ? undefined : cursor(p.until);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stream?.close().catch(() => undefined);
    await this.connection?.client.close().catch(() => undefined);
  }

  private failure(operation: string, error: unknown) {
    const c = this.connection!;
    return mongoOperationError(operation, this.target, c.hosts, c.timeoutMs, error);
  }
}

export const mongoInput = Object.assign(
  defineInput({
    name: 'input',
    description:
      'Reads a MongoDB collection in _id (or another increasing field) order, bounded or following new documents; resumes from its checkpointed position.',
    configSchema: mongoInputConfigSchema,
    outputType: Any,
    async createSource(config) {
      const source = new MongoInputSource(config);
      await source.open();
      return source;
    },
  }),
  { guarantees: ['at-least-once'] as const },
);
