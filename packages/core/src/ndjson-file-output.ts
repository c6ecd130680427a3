import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { z } from 'zod';
import { defineOutput } from './component.js';
import { CodefeedrError } from './errors.js';
import { Any } from './message-type.js';
import type { StreamRecord } from './record.js';
import type { Sink } from './sink.js';

const configSchema = z
  .object({
    path: z.string().min(1),
    /** `append` keeps what the file holds (restarts add to it); `truncate` empties it when the stage starts. */
    mode: z.enum(['append', 'truncate']).default('append'),
    /** `value`: one JSON value per line; `record`: {key, value, timestamp, headers} per line. */
    format: z.enum(['value', 'record']).default('value'),
  })
  .strict();

export type NdjsonFileOutputConfig = z.output<typeof configSchema>;

/** A value cannot be written as JSON (a BigInt, a cycle). */
export class NdjsonWriteError extends CodefeedrError {
  constructor(path: string, cause: unknown, stageId?: string) {
    super(
      'NDJSON_WRITE_FAILED',
      `${stageId === undefined ? 'Cannot write' : `Stage "${stageId}" (ndjson-file) cannot write`} a record to ${path}: ${(cause as Error)?.message ?? String(cause)}. Map values to plain JSON before this output.`,
      { path, ...(stageId === undefined ? {} : { stageId }) },
      { cause },
    );
  }
}

/** Bytes of lines gathered before they are handed to the OS in one write. */
const WRITE_THRESHOLD_BYTES = 1 << 20;
/** The reused buffer: room for a threshold's worth and a batch's lines past it. */
const BUFFER_BYTES = 2 * WRITE_THRESHOLD_BYTES;

/**
 * Appends JSON lines. write() encodes each line straight into one reused byte buffer, and the
 * file sees one write per megabyte or per flush; flush() also fsyncs, so what it acknowledged
 * survives a crash. Encoding into a reused buffer, instead of joining a batch's lines into one
 * string that the write then encodes into a new Buffer, keeps the sink from churning a large
 * string and a megabyte of external memory per write: garbage that lifts a process's peak RSS.
 * The path may also be a FIFO or a device (/dev/null, /dev/stdout): lines are written to it as
 * they come, without fsync or the torn-line repair, which only mean something for a file.
 * write() and flush() are called one at a time (the Sink contract): the buffer is never
 * written into while the file write that reads it is in flight.
 */
export class NdjsonFileSink implements Sink<unknown> {
  private bytes = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  /** One batch's lines, reused. */
  private readonly lines: string[] = [];

  private constructor(
    private readonly file: FileHandle,
    private readonly config: NdjsonFileOutputConfig,
    /** A regular file, which fsync makes durable. */
    private readonly regular: boolean,
    private readonly stageId: string | undefined,
  ) {}

  static async open(config: NdjsonFileOutputConfig, stageId?: string): Promise<NdjsonFileSink> {
    await mkdir(dirname(config.path), { recursive: true });
    const existing = await stat(config.path).catch(() => undefined);
    // A FIFO or a device is opened write-only: `a+` would also make this process a reader of
    // a FIFO, so a reader that goes away would block the writes instead of failing them.
    const flags =
      config.mode === 'truncate' || (existing !== undefined && !existing.isFile()) ? 'w' : 'a+';
    const file = await open(config.path, flags);
    const info = await file.stat();
    const sink = new NdjsonFileSink(file, config, info.isFile(), stageId);
    // A crash mid-write can leave a torn last line: end it, so appended lines stay whole.
    const size = info.isFile() ? info.size : 0;
    if (size > 0) {
      const last = Buffer.alloc(1);
      await file.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await file.write('\n');
    }
    return sink;
  }

  async write(batch: readonly StreamRecord<unknown>[]): Promise<void> {
    // Every line first: a value that cannot be written fails the batch before any of it is.
    const lines = this.lines;
    lines.length = batch.length;
    const whole = this.config.format === 'record';
    try {
      for (let i = 0; i < batch.length; i++) {
        const r = batch[i]!;
        lines[i] =
          JSON.stringify(
            whole
              ? { key: r.key, value: r.value, timestamp: r.timestamp, headers: r.headers }
              : r.value,
          ) ?? 'null';
      }
    } catch (error) {
      lines.length = 0;
      throw new NdjsonWriteError(this.config.path, error, this.stageId);
    }
    for (let i = 0; i < lines.length; i++) {
      const json = lines[i]!;
      // UTF-8 takes at most 3 bytes per UTF-16 unit; the newline one more.
      const most = json.length * 3 + 1;
      if (this.used + most > this.bytes.length) {
        await this.writePending();
        if (most > this.bytes.length) this.bytes = Buffer.allocUnsafe(most);
      }
      this.used += this.bytes.write(json, this.used, 'utf8');
      this.bytes[this.used++] = 0x0a;
    }
    lines.length = 0;
    if (this.used >= WRITE_THRESHOLD_BYTES) await this.writePending();
  }

  private async writePending(): Promise<void> {
    if (this.used === 0) return;
    const length = this.used;
    this.used = 0;
    let at = 0;
    // A write may take fewer bytes than asked (a pipe): hand on the rest until all are taken.
    while (at < length) {
      const { bytesWritten } = await this.file.write(this.bytes, at, length - at);
      at += bytesWritten;
    }
    // A line longer than the buffer grew it: back to its size, so one such line is not kept.
    if (this.bytes.length > BUFFER_BYTES) this.bytes = Buffer.allocUnsafe(BUFFER_BYTES);
  }

  async flush(): Promise<void> {
    await this.writePending();
    // fsync of a pipe, socket or character device fails with EINVAL: there is nothing on disk
    // to make durable, and the write above has already handed the lines on.
    if (this.regular) await this.file.sync();
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.file.close();
    }
  }
}

/**
 * The file split `index` of a split run writes: `events.ndjson` → `events.split-0.ndjson`, so
 * the splits never share a file. A FIFO or a device (/dev/null) is kept as it is.
 */
export async function splitFilePath(
  path: string,
  split: { index: number; count: number } | undefined,
): Promise<string> {
  if (split === undefined || split.count === 1) return path;
  const existing = await stat(path).catch(() => undefined);
  if (existing !== undefined && !existing.isFile()) return path;
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}.split-${split.index}${ext}`);
}

/**
 * Writes each record as one JSON line to a file; flush is fsync-durable. In a split run, each
 * split writes a file of its own (splitFilePath).
 */
export const ndjsonFileOutput = defineOutput({
  name: 'ndjson-file',
  description:
    'Writes records as JSON lines to a file (append or truncate); flush fsyncs. In a split run, one file per split (`<name>.split-<i><ext>`).',
  configSchema,
  inputTypes: [Any] as const,
  createSink: async (config, ctx) =>
    NdjsonFileSink.open(
      { ...config, path: await splitFilePath(config.path, ctx.split) },
      ctx.stageId,
    ),
});
