import { isUtf8 } from 'node:buffer';
import { createReadStream, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { defineInput } from './component.js';
import { CodefeedrError } from './errors.js';
import { Any } from './message-type.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Source } from './source.js';
import { SOURCE_FILE_HEADER, SOURCE_LINE_HEADER } from './reserved-headers.js';
import { badSourceRecord } from './source-record-error.js';

const configSchema = z
  .object({
    /** A file of one JSON value per line, plain or gzip (detected by its magic bytes). */
    path: z.string().min(1),
    /** Dotted path of the event time field (ISO date string or epoch ms), e.g. `created_at`. */
    timestampField: z.string().min(1).optional(),
    /** Dotted path of the field used as the record key, e.g. `repo.name`. */
    keyField: z.string().min(1).optional(),
    /** A longer line is dead-lettered (its first KiB) and skipped, so memory stays bounded. */
    maxLineBytes: z
      .number()
      .int()
      .positive()
      .default(16 * 2 ** 20),
    /**
     * A poll stops before the line that would take the bytes of the lines in its batch past
     * this (a batch holds at least one line), so a batch of long lines stays bounded in memory
     * as well as in records. Raw line bytes: a parsed value takes a few times more heap.
     */
    maxBatchBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 2 ** 20),
  })
  .strict();

export type NdjsonFileInputConfig = z.output<typeof configSchema>;

/** The input file cannot be read at all (missing, unreadable, corrupt gzip). */
export class NdjsonFileError extends CodefeedrError {
  constructor(path: string, cause: unknown) {
    super(
      'NDJSON_FILE_UNREADABLE',
      `Cannot read ${path}: ${(cause as Error)?.message ?? String(cause)}. Check the path and that the file is plain or gzip NDJSON.`,
      { path },
      { cause },
    );
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

type FieldPath = readonly string[];

function readField(value: unknown, path: FieldPath): unknown {
  let v = value;
  for (const part of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * A buffer of read bytes the source owns (an ArrayBuffer of its own, never Node's shared pool
 * nor zlib's output buffer), and how many deferred lines still view it. Once the reader has
 * moved past it and no deferred line views it, its memory is released at once
 * (`ArrayBuffer.prototype.transfer(0)`) instead of at the next full GC. Deferred lines are held
 * long (a reorder buffer's), so the JS objects of their chunks get promoted and, without this,
 * hundreds of megabytes of read chunks an hour pile up as external memory between mark-compacts:
 * what lifted the GitHub replay's peak RSS.
 */
class ReadChunk {
  /** Deferred lines that view these bytes and have not been parsed yet. */
  views = 0;
  /** The reader has moved on to a newer chunk. */
  passed = false;
  constructor(readonly bytes: Buffer) {}

  releaseIfUnused(): void {
    // ES2024's transfer, which this package's TypeScript lib (ES2022) does not declare yet.
    if (this.passed && this.views === 0 && this.bytes.length > 0)
      (this.bytes.buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
  }
}

/**
 * A line read but not parsed yet (NdjsonFileSource's `deferParse`): its bytes, where it was,
 * and what `deferParse` read from it. `NdjsonFileSource.parseDeferred` turns it into the record
 * an eager read would have given, once. Holding bytes, not parsed values, keeps long-held
 * lines (a reorder buffer's) off the young generation: one Buffer view each instead of an
 * object tree.
 */
export class DeferredNdjsonLine {
  /** Parsed already: its bytes may have been released. */
  private parsed = false;

  /** @internal made by NdjsonFileSource.poll only. */
  constructor(
    private readonly chunk: ReadChunk,
    /** Where the line (without its newline) is in the chunk: offsets, not a view, so a held line is one small object. */
    private readonly start: number,
    private readonly end: number,
    /** Its 1-based line number in the file. */
    readonly line: number,
    /** What `deferParse` returned with the time (e.g. an id to order ties by). */
    readonly note: unknown,
  ) {
    chunk.views++;
  }

  /** The line without its newline: a view of the read chunk, valid until it is parsed. */
  get bytes(): Buffer {
    return this.parsed ? Buffer.alloc(0) : this.chunk.bytes.subarray(this.start, this.end);
  }

  /** @internal its text, once: the chunk it is in may be released after. */
  take(path: string): string {
    if (this.parsed)
      throw new Error(
        `Line ${this.line} of ${path} was parsed before: parse a DeferredNdjsonLine once`,
      );
    this.parsed = true;
    const text = this.chunk.bytes.toString('utf8', this.start, this.end);
    this.chunk.views--;
    this.chunk.releaseIfUnused();
    return text;
  }
}

/**
 * Reads the event time (and anything else the caller needs to order a line) from a line's
 * bytes without parsing it, or returns undefined: that line is parsed at once. It must read
 * exactly what the parsed `timestampField` would give.
 */
export type DeferParse = (line: Buffer) => { timestamp: number; note?: unknown } | undefined;

/**
 * Reads NDJSON batch-at-a-time: one await per chunk of the file (256 KiB), never per line.
 * Position = byte offset of the next line in the (decompressed) content and its line
 * number; a restore reopens at that offset (gzip: decompresses and skips up to it).
 * A line that is not JSON, or lacks a valid event time, becomes a bad-source record (raw
 * line kept, error in a header) that the runtime sends to the dead-letter topic.
 */
export class NdjsonFileSource implements Source<unknown> {
  private offset = 0;
  private line = 0;
  private stream: ReadStream | NodeJS.ReadableStream | undefined;
  private chunks: AsyncIterator<Buffer> | undefined;
  /** The bytes read and not consumed yet start at `cursor` of `chunk.bytes`. */
  private chunk = new ReadChunk(Buffer.alloc(0));
  private cursor = 0;
  private get buffer(): Buffer {
    return this.chunk.bytes;
  }
  /** Where to look for the next newline: bytes before it (from cursor) have none. */
  private scanFrom = 0;
  private ended = false;
  /** Decompressed bytes still to drop after a restore into a gzip file. */
  private skip = 0;
  /**
   * The raw size in bytes (newline included) of each record of the last batch polled, index
   * for index: a size estimate for callers that bound what they hold in bytes (the GitHub
   * replay's reorder buffer). Refilled by every poll.
   */
  readonly recordBytes: number[] = [];
  private readonly timestampPath: FieldPath | undefined;
  private readonly keyPath: FieldPath | undefined;

  /**
   * @param check optional rule every parsed value must meet (say what is wrong, or undefined):
   *   a value that fails is a dead letter with the line's exact text, file and line number, as an
   *   unparseable line is. (The GitHub replay uses it for JSON lines that are not events.)
   */
  constructor(
    private readonly config: NdjsonFileInputConfig,
    private readonly check?: (value: unknown) => string | undefined,
    /**
     * Lines it reads the time of are returned unparsed, as a `DeferredNdjsonLine` value with
     * that timestamp (no key yet); `parseDeferred` parses one when the caller gets to it.
     */
    private readonly deferParse?: DeferParse,
  ) {
    this.timestampPath = config.timestampField?.split('.');
    this.keyPath = config.keyField?.split('.');
  }

  private async openAt(offset: number): Promise<void> {
    const { path } = this.config;
    let gzip: boolean;
    try {
      const handle = await open(path, 'r');
      try {
        const head = Buffer.alloc(2);
        const { bytesRead } = await handle.read(head, 0, 2, 0);
        gzip = bytesRead === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new NdjsonFileError(path, error);
    }
    const highWaterMark = 256 * 1024;
    if (gzip) {
      const file = createReadStream(path, { highWaterMark });
      const gunzip = createGunzip({ chunkSize: highWaterMark });
      file.on('error', (error) => gunzip.destroy(error)); // pipe() does not forward errors
      this.stream = file.pipe(gunzip);
      this.skip = offset;
    } else {
      this.stream = createReadStream(path, { start: offset, highWaterMark });
      this.skip = 0;
    }
    this.chunks = (this.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    this.replaceChunk(Buffer.alloc(0));
    this.cursor = 0;
    this.scanFrom = 0;
    this.ended = false;
  }

  /** Moves on to `bytes`; the chunk before is released once no deferred line views it. */
  private replaceChunk(bytes: Buffer): void {
    const before = this.chunk;
    this.chunk = new ReadChunk(bytes);
    before.passed = true;
    before.releaseIfUnused();
  }

  /** Appends the next chunk to the unconsumed rest of the buffer; false at end of file. */
  private async readChunk(): Promise<boolean> {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await this.chunks!.next();
      } catch (error) {
        throw new NdjsonFileError(this.config.path, error);
      }
      if (next.done) return false;
      let chunk = next.value;
      if (this.skip > 0) {
        if (chunk.length <= this.skip) {
          this.skip -= chunk.length;
          continue;
        }
        chunk = chunk.subarray(this.skip);
        this.skip = 0;
      }
      // Always copied into a buffer of its own, which replaceChunk may release (see ReadChunk).
      const rest = this.buffer.subarray(this.cursor);
      const owned = Buffer.allocUnsafeSlow(rest.length + chunk.length);
      rest.copy(owned, 0);
      chunk.copy(owned, rest.length);
      this.replaceChunk(owned);
      this.cursor = 0;
      this.scanFrom = rest.length; // the rest holds no newline: do not scan it again
      return true;
    }
  }

  async poll(maxRecords: number): Promise<StreamRecord<unknown>[] | null> {
    if (this.chunks === undefined) await this.openAt(this.offset);
    const batch: StreamRecord<unknown>[] = [];
    const sizes = this.recordBytes;
    sizes.length = 0;
    const maxBytes = this.config.maxBatchBytes;
    let bytes = 0;
    const now = Date.now();
    while (batch.length < maxRecords) {
      let end = this.buffer.indexOf(NEWLINE, this.scanFrom);
      let consumed: number;
      if (end === -1) {
        if (this.buffer.length - this.cursor > this.config.maxLineBytes) {
          if (batch.length > 0 && bytes + 1024 > maxBytes) break;
          batch.push(await this.skipLongLine(now));
          sizes.push(1024); // what is kept of it
          bytes += 1024;
          continue;
        }
        this.scanFrom = this.buffer.length;
        if (!this.ended && (await this.readChunk())) continue;
        this.ended = true;
        if (this.cursor >= this.buffer.length) break;
        end = this.buffer.length; // a last line without a newline
        consumed = end - this.cursor;
      } else {
        consumed = end + 1 - this.cursor;
      }
      // Over the byte bound: this line starts the next batch (a batch has at least one).
      if (batch.length > 0 && bytes + consumed > maxBytes) break;
      bytes += consumed;
      let stop = end;
      if (stop > this.cursor && this.buffer[stop - 1] === CARRIAGE_RETURN) stop--;
      const start = this.cursor;
      this.cursor += consumed;
      this.scanFrom = this.cursor;
      this.offset += consumed;
      this.line++;
      // RFC 8259: JSON text is UTF-8. Bytes that are not are a dead letter, kept as they are,
      // never decoded into U+FFFD replacement characters that would flow on as data.
      if (!isUtf8(this.buffer.subarray(start, stop))) {
        batch.push(
          this.bad(new Uint8Array(this.buffer.subarray(start, stop)), 'not valid UTF-8', now),
        );
        sizes.push(consumed);
        continue;
      }
      if (this.deferParse !== undefined) {
        const bytes = this.buffer.subarray(start, stop);
        const read = this.deferParse(bytes);
        if (read !== undefined) {
          const value = new DeferredNdjsonLine(this.chunk, start, stop, this.line, read.note);
          batch.push({ key: undefined, value, timestamp: read.timestamp, headers: undefined });
          sizes.push(consumed);
          continue;
        }
      }
      const text = this.buffer.toString('utf8', start, stop);
      if (text.trim().length === 0) continue;
      batch.push(this.toRecord(text, now, this.line));
      sizes.push(consumed);
    }
    if (batch.length === 0 && this.ended) return null;
    return batch;
  }

  /** Drops a line over maxLineBytes chunk by chunk; returns the dead-letter record for it. */
  private async skipLongLine(now: number): Promise<StreamRecord<unknown>> {
    const head = this.buffer.toString('utf8', this.cursor, this.cursor + 1024);
    let skipped = 0;
    let newline = 0;
    for (;;) {
      const end = this.buffer.indexOf(NEWLINE, this.scanFrom);
      if (end !== -1) {
        skipped += end + 1 - this.cursor;
        newline = 1;
        this.cursor = end + 1;
        this.scanFrom = this.cursor;
        break;
      }
      skipped += this.buffer.length - this.cursor;
      this.replaceChunk(Buffer.alloc(0));
      this.cursor = 0;
      this.scanFrom = 0;
      if (this.ended || !(await this.readChunk())) {
        this.ended = true;
        break;
      }
    }
    this.offset += skipped;
    this.line++;
    return this.bad(
      `${head}…`,
      `line of ${skipped - newline} bytes is longer than maxLineBytes (${this.config.maxLineBytes}); its first KiB is kept`,
      now,
    );
  }

  /**
   * The record an eager read would have given for a deferred line (a dead letter, maybe).
   * Once per line: its bytes may be released after.
   */
  parseDeferred(line: DeferredNdjsonLine): StreamRecord<unknown> {
    return this.toRecord(line.take(this.config.path), Date.now(), line.line);
  }

  private toRecord(text: string, now: number, line: number): StreamRecord<unknown> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return this.bad(text, `not JSON (${(error as Error).message})`, now, line);
    }
    const problem = this.check?.(value);
    if (problem !== undefined) return this.bad(text, problem, now, line);
    let timestamp = now;
    if (this.timestampPath !== undefined) {
      const field = readField(value, this.timestampPath);
      timestamp =
        typeof field === 'number' ? field : typeof field === 'string' ? Date.parse(field) : NaN;
      if (!Number.isFinite(timestamp)) {
        return this.bad(
          text,
          `field "${this.config.timestampField}" is ${field === undefined ? 'missing' : `not a date (${JSON.stringify(field)})`}`,
          now,
          line,
        );
      }
    }
    let key: string | undefined;
    if (this.keyPath !== undefined) {
      const field = readField(value, this.keyPath);
      if (field !== undefined && field !== null)
        key = typeof field === 'string' ? field : JSON.stringify(field);
    }
    return { key, value, timestamp, headers: undefined };
  }

  /** A dead-letter record: the line's text, or its bytes when they are not UTF-8. */
  private bad(
    raw: string | Uint8Array,
    problem: string,
    now: number,
    line = this.line,
  ): StreamRecord<unknown> {
    const where = `${this.config.path}:${line}`;
    return badSourceRecord(
      raw,
      `${where}: ${problem}. The line went to the dead-letter topic; fix it and replay it.`,
      now,
      { [SOURCE_FILE_HEADER]: this.config.path, [SOURCE_LINE_HEADER]: String(line) },
    );
  }

  position(): JsonValue {
    return { offset: this.offset, line: this.line };
  }

  async restore(position: JsonValue): Promise<void> {
    const p = (position ?? {}) as { offset?: unknown; line?: unknown };
    this.offset = typeof p.offset === 'number' ? p.offset : 0;
    this.line = typeof p.line === 'number' ? p.line : 0;
    await this.close();
    this.chunks = undefined; // reopened at the offset by the next poll
  }

  async close(): Promise<void> {
    const stream = this.stream as { destroy?: () => void } | undefined;
    stream?.destroy?.();
    this.stream = undefined;
  }
}

/** Reads a file of JSON lines (plain or gzip, e.g. GH Archive hour files) as a bounded stream. */
export const ndjsonFileInput = defineInput({
  name: 'ndjson-file',
  description:
    'Reads a plain or gzip NDJSON file (e.g. a GH Archive hour), event time from a field.',
  configSchema,
  outputType: Any,
  createSource: (config) => new NdjsonFileSource(config),
});
