import {
  Any,
  defineOutput,
  z,
  type Sink,
  type SinkRecordFailure,
  type SinkWriteResult,
  type StreamRecord,
} from '@codefeedr/core';
import { BSON, ObjectId, type Document, type WriteConcernSettings } from 'mongodb';
import { BulkWriter, type PlannedWrite } from './bulk-writer.js';
import { mongoConnectionConfigSchema, openMongo, type MongoConnection } from './connection.js';
import { ensureCollection, type IndexSpec } from './collection-setup.js';
import { MongoClientClosedError, MongoRecordRejectedError, MongoSetupError } from './errors.js';
import { fieldPath, readPath } from './field-path.js';

const indexSchema = z.object({
  keys: z
    .record(z.string().min(1), z.union([z.literal(1), z.literal(-1)]))
    .describe('Fields and directions, e.g. { repo: 1, created_at: -1 }.'),
  unique: z.boolean().default(false),
  name: z.string().min(1).optional(),
});

export const mongoOutputConfigSchema = mongoConnectionConfigSchema.extend({
  collection: z
    .string()
    .min(1)
    .regex(/^[^$\0]+$/, 'no $ or NUL')
    .describe('Collection to write (created with its indexes when missing).'),
  mode: z
    .enum(['upsert', 'insert'])
    .default('upsert')
    .describe(
      'upsert: one document per key, a replayed record overwrites it (idempotent); insert: append every record.',
    ),
  update: z
    .enum(['replace', 'set'])
    .default('replace')
    .describe(
      'How an upsert writes an existing document: replace it whole, or $set the record’s top-level fields (merge).',
    ),
  keyField: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Dot path of the value field that identifies a document (e.g. `id`), indexed unique; default: the record key is the document’s _id.',
    ),
  writeConcern: z
    .object({
      w: z.union([z.literal('majority'), z.number().int().min(0)]).default('majority'),
      journal: z.boolean().optional(),
      wtimeoutMs: z.number().int().positive().optional(),
    })
    .default({ w: 'majority' })
    .describe('Acknowledgement a write waits for before it counts as durable.'),
  createCollection: z
    .boolean()
    .default(true)
    .describe('Create the collection (and its indexes) when missing; false: fail instead.'),
  indexes: z.array(indexSchema).default([]).describe('Further indexes to create when missing.'),
  maxBatchWrites: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .optional()
    .describe(
      'Most writes per bulkWrite command (a batch is sent in slices). Default 1000, and 50 for upserts on FerretDB, whose SQLite backend (1.24) stops answering an update command of 100 or more writes (more than 99 upserts is refused there).',
    ),
  extendedJson: z
    .boolean()
    .default(true)
    .describe(
      'Read {"$oid": …}, {"$date": …} and other Extended JSON wrappers in values as BSON types (what mongo-input emits).',
    ),
});

const DEFAULT_MAX_WRITES = 1_000;
/**
 * FerretDB 1.24 on SQLite holds a connection per matched update until the command ends, out of
 * 100 per database: an update command of 100 writes that match never ends (ferretdb-write-gate).
 */
const FERRETDB_MAX_WRITES = 50;
const FERRETDB_WRITE_LIMIT = 99;

export type MongoOutputConfig = z.output<typeof mongoOutputConfigSchema>;
export type MongoOutputOptions = z.input<typeof mongoOutputConfigSchema>;

/**
 * Writes records to a MongoDB collection (CodeFeedr's MongoOutput) with one unordered
 * bulkWrite per batch. `write` returns once the server acknowledged the batch at the
 * configured write concern, so `flush` has nothing left to wait for. Records the server (or
 * the size check before sending) refuses come back in `failed` for the dead letters; the
 * rest of the batch is written. In upsert mode a batch with several records of one key is
 * sent in rounds, one record per key per round, because an unordered bulkWrite may apply
 * writes in any order: the last record of a key always wins, as it would one at a time.
 */
export class MongoOutputSink implements Sink<unknown> {
  private writer: BulkWriter | undefined;
  private connection: MongoConnection | undefined;
  private closed = false;
  private readonly keyPath: readonly string[] | undefined;
  private readonly target: string;

  constructor(private readonly config: MongoOutputConfig) {
    this.keyPath = config.keyField === undefined ? undefined : fieldPath(config.keyField);
    this.target = `${config.database}.${config.collection}`;
  }

  async open(): Promise<void> {
    const connection = await openMongo(this.config);
    this.connection = connection;
    try {
      const indexes: IndexSpec[] = [...this.config.indexes];
      if (this.config.mode === 'upsert' && this.config.keyField !== undefined)
        indexes.unshift({ keys: { [this.config.keyField]: 1 }, unique: true });
      await ensureCollection(connection, this.config.collection, {
        create: this.config.createCollection,
        indexes,
      });
    } catch (error) {
      await connection.client.close().catch(() => undefined);
      throw error;
    }
    // Only update commands hold FerretDB connections (inserts do not): upserts alone are capped.
    const updatesOnFerretDb = connection.ferretdb && this.config.mode === 'upsert';
    const maxWrites =
      this.config.maxBatchWrites ?? (updatesOnFerretDb ? FERRETDB_MAX_WRITES : DEFAULT_MAX_WRITES);
    if (updatesOnFerretDb && maxWrites > FERRETDB_WRITE_LIMIT) {
      await connection.client.close().catch(() => undefined);
      throw new MongoSetupError(
        this.target,
        `maxBatchWrites is ${maxWrites}, but ${connection.server} stops answering an update command of 100 or more writes; set maxBatchWrites to ${FERRETDB_WRITE_LIMIT} or less (or leave it out)`,
      );
    }
    const { w, journal, wtimeoutMs } = this.config.writeConcern;
    const writeConcern: WriteConcernSettings = { w };
    if (journal !== undefined) writeConcern.journal = journal;
    if (wtimeoutMs !== undefined) writeConcern.wtimeoutMS = wtimeoutMs;
    this.writer = new BulkWriter(connection.db.collection(this.config.collection), writeConcern, {
      operation: 'bulkWrite',
      target: this.target,
      hosts: connection.hosts,
      timeoutMs: connection.timeoutMs,
      maxWrites,
      ferretDbGate: updatesOnFerretDb ? `${connection.hosts}/${this.config.database}` : undefined,
    });
  }

  async write(batch: readonly StreamRecord<unknown>[]): Promise<void | SinkWriteResult<unknown>> {
    if (this.closed || this.writer === undefined) throw new MongoClientClosedError('output');
    const failed: SinkRecordFailure<unknown>[] = [];
    const rounds: PlannedWrite[][] = [];
    const occurrences = new Map<string, number>();
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      const planned = this.plan(record, i);
      if (planned instanceof MongoRecordRejectedError) {
        failed.push({ record, error: planned });
        continue;
      }
      let round = 0;
      if (this.config.mode === 'upsert') {
        round = occurrences.get(planned.label) ?? 0;
        occurrences.set(planned.label, round + 1);
      }
      (rounds[round] ??= []).push(planned);
    }
    for (const round of rounds) {
      for (const rejection of await this.writer.write(round))
        failed.push({ record: batch[rejection.index]!, error: rejection.error });
    }
    return failed.length > 0 ? { failed } : undefined;
  }

  /** Every write was acknowledged in `write` already. */
  async flush(): Promise<void> {
    if (this.closed) throw new MongoClientClosedError('output');
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connection?.client.close().catch(() => undefined);
  }

  /** The write for one record, or why it cannot be written (not sent then). */
  private plan(
    record: StreamRecord<unknown>,
    index: number,
  ): PlannedWrite | MongoRecordRejectedError {
    const value = record.value;
    const keyLabel = record.key === undefined ? '' : `key "${record.key}"`;
    const reject = (problem: string) =>
      new MongoRecordRejectedError(`${this.target}${keyLabel ? ` (${keyLabel})` : ''}`, problem);
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return reject(
        `the value is ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}, not a document; map it to an object first`,
      );
    let doc: Document;
    try {
      doc = this.config.extendedJson
        ? (BSON.EJSON.deserialize(value as Document, { relaxed: true }) as Document)
        : { ...(value as Document) };
    } catch (error) {
      return reject(`its Extended JSON is invalid (${(error as Error).message})`);
    }
    const size = BSON.calculateObjectSize(doc, { ignoreUndefined: true });
    const limit = this.connection!.maxDocumentBytes;
    if (size > limit)
      return reject(
        `the document is ${size} bytes, over the server's limit of ${limit} bytes (maxBsonObjectSize); split it or store the large part elsewhere (GridFS)`,
      );

    if (this.config.mode === 'insert') {
      const generatedId = doc._id === undefined ? new ObjectId() : undefined;
      const document = generatedId === undefined ? doc : { _id: generatedId, ...doc };
      return {
        model: { insertOne: { document } },
        index,
        generatedId,
        label: keyLabel || `_id ${String(document._id)}`,
      };
    }

    let filter: Document;
    let label: string;
    if (this.keyPath === undefined) {
      if (record.key === undefined)
        return reject(
          'the record has no key to upsert by; give records a key (keyBy) or set `keyField`, or use mode: insert',
        );
      filter = { _id: record.key };
      label = keyLabel;
    } else {
      const key = readPath(doc, this.keyPath);
      if (
        key === undefined ||
        key === null ||
        Array.isArray(key) ||
        (typeof key === 'object' && !(key instanceof ObjectId) && !(key instanceof Date))
      )
        return reject(
          `field "${this.config.keyField}" (keyField) is ${key === undefined ? 'missing' : `not a scalar (${JSON.stringify(key)})`}; every record needs one to upsert by`,
        );
      filter = { [this.config.keyField!]: key };
      label = `${this.config.keyField} ${BSON.EJSON.stringify(key)}`;
    }
    const model: PlannedWrite['model'] =
      this.config.update === 'replace'
        ? { replaceOne: { filter, replacement: doc, upsert: true } }
        : { updateOne: { filter, update: { $set: doc }, upsert: true } };
    return { model, index, label };
  }
}

export const mongoOutput = Object.assign(
  defineOutput({
    name: 'output',
    description:
      'Writes records to a MongoDB collection with batched unordered bulkWrites: upsert by key (idempotent) or insert; refused documents are dead-lettered.',
    configSchema: mongoOutputConfigSchema,
    inputTypes: [Any] as const,
    async createSink(config) {
      const sink = new MongoOutputSink(config);
      await sink.open();
      return sink;
    },
  }),
  { guarantees: ['at-least-once'] as const },
);
