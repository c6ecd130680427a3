import type { ObjectId } from 'mongodb';
import {
  MongoBulkWriteError,
  type AnyBulkWriteOperation,
  type Collection,
  type Document,
  type WriteConcernSettings,
} from 'mongodb';
import {
  MongoOperationError,
  MongoRecordRejectedError,
  MongoWriteConcernError,
  isTransientCode,
  mongoOperationError,
} from './errors.js';
import { throughFerretDbWriteGate } from './ferretdb-write-gate.js';

/** One write of a batch, with the index of the record it came from. */
export interface PlannedWrite {
  readonly model: AnyBulkWriteOperation<Document>;
  /** Index of the record in the batch given to the sink. */
  readonly index: number;
  /** For inserts: the `_id` this plugin generated, so a re-sent insert can be recognised. */
  readonly generatedId?: ObjectId | undefined;
  /** Shown in a rejection: the record key or key field value. */
  readonly label: string;
}

export interface WriteRejection {
  readonly index: number;
  readonly error: MongoRecordRejectedError;
}

interface SendOutcome {
  rejected: WriteRejection[];
  /** Writes that failed for a transient reason (re-sent), with the last such error. */
  transient: PlannedWrite[];
  lastTransient?: unknown;
}

const DUPLICATE_KEY = 11000;
/** Extra sends of writes that failed transiently before the call fails (retryably) as a whole. */
const TRANSIENT_RESENDS = 2;

/**
 * Sends planned writes as unordered bulkWrites and tells which records the server refused.
 *
 * The error's writeErrors are trusted only when the result accounts for every write (written
 * + refused = sent). A server that stops at the first error of an unordered batch and leaves
 * the counts out (FerretDB 1.x does so for updates, and reports index 0 whatever failed)
 * fails that test; the batch is then split in halves and each half sent again, down to
 * single writes whose error is unambiguous. Re-sending is safe: upserts by key are
 * idempotent, and inserts carry a generated `_id`, so a duplicate-key error on one that is
 * already stored means it was written the first time.
 */
export class BulkWriter {
  constructor(
    private readonly collection: Collection<Document>,
    private readonly writeConcern: WriteConcernSettings,
    private readonly where: {
      operation: string;
      target: string;
      hosts: string;
      timeoutMs: number;
      /** Most writes per command. */
      maxWrites: number;
      /** Set against FerretDB: `host:port/database`, whose bulkWrites go one at a time. */
      ferretDbGate?: string | undefined;
    },
  ) {}

  async write(writes: readonly PlannedWrite[]): Promise<WriteRejection[]> {
    const rejected: WriteRejection[] = [];
    const max = this.where.maxWrites;
    for (let i = 0; i < writes.length; i += max)
      rejected.push(...(await this.writeSlice(writes.slice(i, i + max))));
    return rejected;
  }

  private async writeSlice(writes: readonly PlannedWrite[]): Promise<WriteRejection[]> {
    const rejected: WriteRejection[] = [];
    let pending = writes;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const outcome = await this.send(pending);
      rejected.push(...outcome.rejected);
      if (outcome.transient.length === 0) break;
      if (attempt >= TRANSIENT_RESENDS)
        throw new MongoOperationError('bulkWrite', this.where.target, outcome.lastTransient);
      pending = outcome.transient;
    }
    return rejected;
  }

  private async send(writes: readonly PlannedWrite[]): Promise<SendOutcome> {
    const outcome: SendOutcome = { rejected: [], transient: [] };
    if (writes.length === 0) return outcome;
    try {
      const bulkWrite = () =>
        this.collection.bulkWrite(
          writes.map((w) => w.model),
          { ordered: false, writeConcern: this.writeConcern },
        );
      const gate = this.where.ferretDbGate;
      await (gate === undefined ? bulkWrite() : throughFerretDbWriteGate(gate, bulkWrite));
      return outcome;
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError)) {
        const { operation, target, hosts, timeoutMs } = this.where;
        throw mongoOperationError(operation, target, hosts, timeoutMs, error);
      }
      if (error.writeConcernError)
        throw new MongoWriteConcernError(this.where.target, error.writeConcernError.errmsg ?? '');
      const writeErrors = Array.isArray(error.writeErrors)
        ? error.writeErrors
        : [error.writeErrors];
      const result = error.result;
      const accounted =
        result.insertedCount + result.matchedCount + result.upsertedCount + writeErrors.length;
      if (accounted !== writes.length && writes.length > 1) {
        const half = Math.ceil(writes.length / 2);
        const left = await this.send(writes.slice(0, half));
        const right = await this.send(writes.slice(half));
        return {
          rejected: [...left.rejected, ...right.rejected],
          transient: [...left.transient, ...right.transient],
          lastTransient: right.lastTransient ?? left.lastTransient,
        };
      }
      for (const writeError of writeErrors) {
        // A lone write's error is its own, whatever index the server reported.
        const write = writes.length === 1 ? writes[0] : writes[writeError.index];
        if (write === undefined) continue;
        if (isTransientCode(writeError.code)) {
          outcome.transient.push(write);
          outcome.lastTransient = writeError;
          continue;
        }
        if (writeError.code === DUPLICATE_KEY && (await this.alreadyInserted(write))) continue;
        outcome.rejected.push({
          index: write.index,
          error: new MongoRecordRejectedError(
            `${this.where.target} (${write.label})`,
            `${writeError.errmsg ?? 'write error'} (server code ${writeError.code})`,
            writeError.code,
          ),
        });
      }
      return outcome;
    }
  }

  private async alreadyInserted(write: PlannedWrite): Promise<boolean> {
    if (write.generatedId === undefined) return false;
    const found = await this.collection.findOne(
      { _id: write.generatedId },
      { projection: { _id: 1 } },
    );
    return found !== null;
  }
}
