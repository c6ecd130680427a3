import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ConfigError,
  DeferredNdjsonLine,
  NdjsonFileSource,
  ndjsonFileInput,
  defineInput,
  sourceRecordError,
  z,
} from '@codefeedr/core';
import type { JsonValue, Logger, Source, SplitShare, StreamRecord } from '@codefeedr/core';
import { ReplayFileError } from './errors.js';
import { EventTimeReorderBuffer } from './event-time-reorder.js';
import type { EventTimeKey } from './event-time-reorder.js';
import { readEventTimeKey } from './event-time-key.js';
import { GitHubEventType, type GitHubEvent } from './event-types.js';
import { feedSchema, inFeed } from './github-feed.js';
import { compareEventIds } from './recent-id-window.js';

/**
 * On an event the replay could not put in event-time order (it came more than
 * `reorderWindowMs` after a newer one): how many ms older it is than the newest event
 * emitted before it. A watermark has passed it by then; route it or allow that lateness.
 */
export const REPLAY_LATE_HEADER = 'codefeedr-replay-late-ms';

/** Records asked of the NDJSON reader at a time: one await per chunk, never per record. */
const READ_CHUNK = 2_000;
/**
 * Raw bytes of the lines read ahead at a time (the reader stops a chunk there): read-ahead
 * records wait, parsed, until the reorder buffer takes them, so they are bounded in bytes too.
 */
const READ_CHUNK_BYTES = 512 * 1024;

const eventIdSchema = z
  .string()
  .regex(/^(0|[1-9]\d*)$/, 'an event id is a string of digits, no leading zeros');

export const replayInputConfigSchema = z
  .object({
    /** GH Archive hour files (`2015-01-01-12.json.gz`), NDJSON files (plain or .gz) or folders of them. */
    paths: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /**
     * `event-time` (default): each file is streamed through a bounded reorder buffer and
     * emitted sorted by created_at, then id (see `reorderWindowMs`). `file`: file order.
     * Memory is bounded either way, whatever the file size.
     */
    order: z.enum(['event-time', 'file']).default('event-time'),
    /**
     * event-time order: how far back in event time an event may come after a newer one and
     * still be put in order. An event is held until one more than this newer has been read.
     * An event later than that is emitted at once, out of order, counted and flagged with the
     * `codefeedr-replay-late-ms` header, never dropped. Milliseconds of event time, not
     * records: GH Archive hours are nearly sorted and an event's delay is a matter of time
     * (it was published late), whatever the hour's event rate; and it is the unit of a
     * watermark's bounded out-of-orderness.
     */
    reorderWindowMs: z.number().int().nonnegative().default(60_000),
    /**
     * event-time order: the most events held at once, so memory stays bounded on a dense
     * hour; over it the oldest is emitted early (later arrivals older than it become late).
     */
    reorderMaxRecords: z.number().int().positive().default(10_000),
    /**
     * event-time order: the most bytes held at once, counted as the raw lines' sizes in the
     * file (a parsed event takes a few times more heap), so a file of large events stays
     * bounded too; over it the oldest is emitted early, as over `reorderMaxRecords`.
     */
    reorderMaxBytes: z
      .number()
      .int()
      .positive()
      .default(16 * 2 ** 20),
    /** Pace by event time: 1 = as it happened, 60 = an hour per minute. Absent: as fast as possible. */
    speed: z.number().positive().optional(),
    /**
     * Only the events a live feed would have served: one repository's, organisation's or
     * user's (the actor). Default `public`: every event. With `idsAfter`/`idsBefore`, the
     * back-fill of a gap the events input reported (its warning gives all three).
     */
    feed: feedSchema,
    /** Only events with a numeric id greater than this (exclusive). */
    idsAfter: eventIdSchema.optional(),
    /** Only events with a numeric id less than this (exclusive). */
    idsBefore: eventIdSchema.optional(),
  })
  .strict();

export type ReplayInputConfig = z.output<typeof replayInputConfigSchema>;
export type ReplayInputOptions = z.input<typeof replayInputConfigSchema>;

const DATA_FILE = /\.(json|ndjson|jsonl)(\.gz)?$/;
const GH_ARCHIVE_HOUR = /(\d{4})-(\d{2})-(\d{2})-(\d{1,2})\.json(\.gz)?$/;

/** GH Archive names hours without zero padding (…-9 before …-10): order by the hour they name. */
function hourOf(path: string): number {
  const m = basename(path).match(GH_ARCHIVE_HOUR);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4])) : Number.NaN;
}

/** Expands folders and orders files: GH Archive hours by hour, then everything else by name. */
export function replayFiles(paths: string | readonly string[]): string[] {
  const files: string[] = [];
  for (const path of typeof paths === 'string' ? [paths] : paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (error) {
      throw new ReplayFileError(path, error);
    }
    if (!isDirectory) files.push(path);
    else {
      for (const name of readdirSync(path).sort()) {
        if (DATA_FILE.test(name)) files.push(join(path, name));
      }
    }
  }
  return files
    .map((path, i) => ({ path, hour: hourOf(path), i }))
    .sort((a, b) => {
      const ah = Number.isNaN(a.hour) ? Infinity : a.hour;
      const bh = Number.isNaN(b.hour) ? Infinity : b.hour;
      return ah !== bh ? ah - bh : a.i - b.i;
    })
    .map((f) => f.path);
}

function isEventShaped(value: unknown): value is GitHubEvent {
  const v = value as Partial<GitHubEvent> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.id === 'string' &&
    typeof v.type === 'string' &&
    typeof v.created_at === 'string' &&
    typeof v.repo?.name === 'string'
  );
}

type KeyJson = [number, string] | null;
const keyToJson = (k: EventTimeKey | null): KeyJson => (k === null ? null : [k.timestamp, k.id]);
const keyFromJson = (k: unknown): EventTimeKey | null =>
  Array.isArray(k) && typeof k[0] === 'number' && typeof k[1] === 'string'
    ? { timestamp: k[0], id: k[1] }
    : null;

interface ReplayPosition {
  /** Index into the ordered file list, and the file's name as a sanity check. */
  file: number;
  name: string | null;
  /**
   * file order: the NDJSON reader's position in the file. event-time order: where a restore
   * re-reads from (the first record still held in the reorder buffer, or the read position).
   */
  reader: JsonValue;
  /** event-time order: records to re-read from `reader`; those ≤ `last` were emitted already. */
  replay?: number;
  /** event-time order: the last record the reorder buffer released, [ms, id]. */
  last?: KeyJson;
  /** event-time order: the newest event time read in this file (null: none yet). */
  max?: number | null;
  /** The newest event emitted in the whole replay, and how many were emitted late. */
  highest?: KeyJson;
  late?: number;
  /** Checkpoints of earlier versions: records of the sorted file already emitted. */
  index?: number;
}

/**
 * A record as read: an event, a dead letter, or (event-time order) a line held unparsed with
 * its order key, parsed when the reorder buffer releases it (see event-time-key.ts).
 */
type ReadRecord = StreamRecord<GitHubEvent | DeferredNdjsonLine>;
type Reorder = EventTimeReorderBuffer<ReadRecord, JsonValue>;

/** The id a read record is ordered by among records of the same time. */
const orderIdOf = (record: ReadRecord): string =>
  record.value instanceof DeferredNdjsonLine ? (record.value.note as string) : record.value.id;

/**
 * Replays GitHub events from disk. Parsing is core's NdjsonFileSource (gzip detection,
 * streaming chunked reads, bad lines as dead-letter records); this adds GH Archive file
 * ordering, event-time order within a file through a bounded reorder buffer, pacing and a
 * position across files. Bad lines are not events: they pass through where they are read.
 */
export class GitHubReplaySource implements Source<GitHubEvent> {
  private readonly files: string[];
  private fileIndex = 0;
  private reader: NdjsonFileSource | undefined;
  private readonly reorder: Reorder;
  /** event-time order: the reader has no more records for the current file. */
  private fileEnded = false;
  /** event-time order: records read from the file and not offered to the reorder buffer yet. */
  private pending: ReadRecord[] = [];
  /** The raw size of each pending record (the reader's `recordBytes` of that chunk). */
  private pendingBytes: readonly number[] = [];
  private pendingAt = 0;
  /** event-time order: a restore to apply when the file is opened (re-read, rebuild). */
  private rebuildFrom: { reader: JsonValue; replay: number } | undefined;
  /** A checkpoint of an earlier version (sorted-file index): records of the file to drop. */
  private discard = 0;
  /** The newest event emitted so far: an event older than it is late. */
  private highest: EventTimeKey | null = null;
  private late = 0;
  private lateInFile = 0;
  private maxLatenessInFile = 0;
  private readerPosition: JsonValue = null;
  /** file order: a restored reader position, applied when the file is reopened. */
  private restoreReaderAt: JsonValue = null;
  /** Pacing: the wall clock and event time the replay is anchored at. */
  private anchor: { wall: number; event: number } | undefined;

  constructor(
    private readonly config: ReplayInputConfig,
    private readonly logger?: Logger,
    split: SplitShare = { index: 0, count: 1 },
  ) {
    this.files = splitFiles(replayFiles(config.paths), split);
    this.reorder = new EventTimeReorderBuffer(
      config.reorderWindowMs,
      config.reorderMaxRecords,
      undefined,
      config.reorderMaxBytes,
    );
  }

  /** Whether `feed`, `idsAfter` or `idsBefore` leave events out (else no per-record check). */
  private get selects(): boolean {
    const c = this.config;
    return c.feed !== 'public' || c.idsAfter !== undefined || c.idsBefore !== undefined;
  }

  /**
   * After ordering and position keeping, so a restore replays the same sequence and selects the
   * same events. Bad lines pass: they go to the dead letters whatever the selection.
   */
  private selected(record: StreamRecord<GitHubEvent>): boolean {
    if (sourceRecordError(record) !== undefined) return true;
    const { feed, idsAfter, idsBefore } = this.config;
    const id = record.value.id;
    if (idsAfter !== undefined && compareEventIds(id, idsAfter) <= 0) return false;
    if (idsBefore !== undefined && compareEventIds(id, idsBefore) >= 0) return false;
    return inFeed(record.value, feed);
  }

  /** Events emitted out of event-time order so far (each flagged with REPLAY_LATE_HEADER). */
  get lateEvents(): number {
    return this.late;
  }

  async poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<GitHubEvent>[] | null> {
    // Paced replays hand out small batches so a batch spans little event time.
    const max = this.config.speed === undefined ? maxRecords : Math.min(maxRecords, 100);
    const batch: StreamRecord<GitHubEvent>[] = [];
    while (batch.length < max && this.fileIndex < this.files.length) {
      const taken =
        this.config.order === 'event-time'
          ? await this.takeOrdered(max - batch.length)
          : await this.takeStreaming(max - batch.length);
      if (taken === null) this.nextFile();
      else for (const record of taken) batch.push(record);
    }
    if (batch.length === 0) return this.fileIndex >= this.files.length ? null : [];
    this.flagLate(batch);
    if (this.config.speed !== undefined) await this.pace(batch, signal);
    return this.selects ? batch.filter((record) => this.selected(record)) : batch;
  }

  position(): JsonValue {
    const name =
      this.files[this.fileIndex] === undefined ? null : basename(this.files[this.fileIndex]!);
    if (this.config.order === 'file') {
      return { file: this.fileIndex, name, reader: this.readerPosition };
    }
    const restart = this.rebuildFrom ?? this.reorder.restartPoint();
    const start =
      restart === undefined ? undefined : 'start' in restart ? restart.start : restart.reader;
    const position: ReplayPosition = {
      file: this.fileIndex,
      name,
      reader: start ?? this.reader?.position() ?? this.readerPosition,
      replay: restart?.replay ?? 0,
      last: keyToJson(this.reorder.last),
      max: Number.isFinite(this.reorder.maxTimestamp) ? this.reorder.maxTimestamp : null,
      highest: keyToJson(this.highest),
      late: this.late,
    };
    if (this.discard > 0) position.index = this.discard;
    return position as unknown as JsonValue;
  }

  async restore(position: JsonValue): Promise<void> {
    const saved = position as unknown as Partial<ReplayPosition> | null;
    await this.reader?.close();
    this.reader = undefined;
    this.anchor = undefined;
    this.fileEnded = false;
    this.pending = [];
    this.pendingBytes = [];
    this.pendingAt = 0;
    this.fileIndex = typeof saved?.file === 'number' ? saved.file : 0;
    this.readerPosition = saved?.reader ?? null;
    this.restoreReaderAt = this.readerPosition;
    this.highest = keyFromJson(saved?.highest);
    this.late = typeof saved?.late === 'number' ? saved.late : 0;
    this.lateInFile = 0;
    this.maxLatenessInFile = 0;
    const max = typeof saved?.max === 'number' ? saved.max : -Infinity;
    this.reorder.reset(keyFromJson(saved?.last), max);
    this.rebuildFrom =
      typeof saved?.replay === 'number'
        ? { reader: saved.reader ?? null, replay: saved.replay }
        : undefined;
    // An earlier version's checkpoint counted records of the sorted file: replay the file
    // and drop as many (the same records when the file's disorder is within the window).
    this.discard =
      saved?.replay === undefined && typeof saved?.index === 'number' ? saved.index : 0;
  }

  async close(): Promise<void> {
    await this.reader?.close();
    this.reader = undefined;
  }

  private openReader(): NdjsonFileSource {
    // Through core's config schema, so its defaults (line size limit, ...) apply here too.
    this.reader ??= new NdjsonFileSource(
      ndjsonFileInput.configSchema.parse({
        path: this.files[this.fileIndex]!,
        timestampField: 'created_at',
        keyField: 'repo.name',
        maxBatchBytes: READ_CHUNK_BYTES,
      }),
      // A JSON line that is not an event is a dead letter with its exact text, file and line.
      (value) =>
        isEventShaped(value)
          ? undefined
          : 'not a GitHub event (needs string id, type, created_at and repo.name)',
      // Event-time order holds lines in the reorder buffer: as bytes, parsed on release.
      this.config.order === 'event-time' ? readEventTimeKey : undefined,
    );
    return this.reader;
  }

  private nextFile(): void {
    if (this.lateInFile > 0) {
      this.logger?.warn(
        `${this.files[this.fileIndex]}: ${this.lateInFile} events came more than reorderWindowMs (${this.config.reorderWindowMs} ms) after a newer one, up to ${this.maxLatenessInFile} ms older than it; they were emitted at once, out of event-time order, with the ${REPLAY_LATE_HEADER} header. Raise reorderWindowMs, or give event-time windows that much allowed lateness.`,
      );
    }
    void this.reader?.close();
    this.reader = undefined;
    this.fileIndex++;
    this.fileEnded = false;
    this.pending = [];
    this.pendingBytes = [];
    this.pendingAt = 0;
    this.rebuildFrom = undefined;
    this.discard = 0;
    this.lateInFile = 0;
    this.maxLatenessInFile = 0;
    // Each file is ordered on its own (an hour file after the hour before it).
    this.reorder.reset();
    this.readerPosition = null;
    this.restoreReaderAt = null;
  }

  /**
   * Up to `max` records of the current file in event-time order; null when it is done.
   * Record by record, as if each were read alone: after each one, every record it made due
   * is released before the next is offered, so the output does not depend on batch sizes
   * (a restore with other batch sizes continues the same sequence). Records read but not
   * offered yet wait in `pending`: the position counts only offered ones.
   */
  private async takeOrdered(max: number): Promise<StreamRecord<GitHubEvent>[] | null> {
    const reorder = this.reorder;
    const reader = this.openReader();
    if (this.rebuildFrom !== undefined) await this.rebuild(reader, this.rebuildFrom);
    const out: ReadRecord[] = [];
    for (;;) {
      const drained = this.fileEnded && this.pendingAt >= this.pending.length;
      reorder.release(out, max - out.length, drained);
      if (this.discard > 0 && out.length > 0) {
        const dropped = Math.min(this.discard, out.length);
        out.splice(0, dropped);
        this.discard -= dropped;
      }
      if (out.length >= max || (drained && reorder.size === 0)) break;
      if (this.pendingAt >= this.pending.length) {
        reorder.beginSegment(reader.position());
        const records = await this.readChunk(reader, READ_CHUNK);
        this.pending = records ?? [];
        this.pendingBytes = reader.recordBytes; // valid until the next poll, after this chunk
        this.pendingAt = 0;
        if (records === null) this.fileEnded = true;
        continue;
      }
      const bytes = this.pendingBytes[this.pendingAt] ?? 0;
      const record = this.pending[this.pendingAt]!;
      this.pending[this.pendingAt++] = undefined as never; // let it go once released
      if (sourceRecordError(record) !== undefined) {
        reorder.skip(); // a bad line is no event: it goes on (to the dead letters) at once
        out.push(record);
      } else if (!reorder.offer(record.timestamp, orderIdOf(record), record, bytes)) {
        out.push(record);
      }
    }
    if (out.length === 0 && this.fileEnded && this.pendingAt >= this.pending.length) return null;
    // Parsed as they leave, in order: each lives for one batch (see ReadRecord).
    for (let i = 0; i < out.length; i++) {
      const value = out[i]!.value;
      if (value instanceof DeferredNdjsonLine) out[i] = reader.parseDeferred(value) as ReadRecord;
    }
    return out as StreamRecord<GitHubEvent>[];
  }

  /**
   * After a restore: re-reads from the saved point and puts back into the reorder buffer
   * exactly the records that were held at the checkpoint (read, and newer than the last
   * released); the others were emitted before it.
   */
  private async rebuild(
    reader: NdjsonFileSource,
    from: { reader: JsonValue; replay: number },
  ): Promise<void> {
    this.rebuildFrom = undefined;
    const reorder = this.reorder;
    if (from.reader !== null) await reader.restore(from.reader);
    let left = from.replay;
    while (left > 0) {
      reorder.beginSegment(reader.position());
      const records = await this.readChunk(reader, Math.min(left, READ_CHUNK));
      if (records === null) break;
      left -= records.length;
      const sizes = reader.recordBytes;
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        if (
          sourceRecordError(record) !== undefined ||
          reorder.wasReleased(record.timestamp, orderIdOf(record))
        ) {
          reorder.skip();
        } else {
          reorder.offer(record.timestamp, orderIdOf(record), record, sizes[i] ?? 0);
        }
      }
    }
  }

  /** Flags (and counts) each event older than one emitted before it: a watermark passed it. */
  private flagLate(batch: StreamRecord<GitHubEvent>[]): void {
    // The newest emitted key as two scalars: no allocation per record.
    let highestTs = this.highest?.timestamp ?? -Infinity;
    let highestId = this.highest?.id ?? '';
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      if (record.headers !== undefined && sourceRecordError(record) !== undefined) continue;
      const ts = record.timestamp;
      const id = record.value.id;
      if (ts > highestTs || (ts === highestTs && compareEventIds(id, highestId) > 0)) {
        highestTs = ts;
        highestId = id;
        continue;
      }
      const lateness = highestTs - ts;
      batch[i] = {
        ...record,
        headers: { ...record.headers, [REPLAY_LATE_HEADER]: String(lateness) },
      };
      this.late++;
      this.lateInFile++;
      if (lateness > this.maxLatenessInFile) this.maxLatenessInFile = lateness;
    }
    if (Number.isFinite(highestTs)) this.highest = { timestamp: highestTs, id: highestId };
  }

  private async takeStreaming(max: number): Promise<StreamRecord<GitHubEvent>[] | null> {
    const reader = this.openReader();
    if (this.restoreReaderAt !== null) {
      await reader.restore(this.restoreReaderAt);
      this.restoreReaderAt = null;
    }
    const chunk = await this.readChunk(reader, max);
    this.readerPosition = reader.position();
    return chunk as StreamRecord<GitHubEvent>[] | null; // file order parses every line at once
  }

  private async readChunk(reader: NdjsonFileSource, max: number): Promise<ReadRecord[] | null> {
    let records: StreamRecord<unknown>[] | null;
    try {
      records = await reader.poll(max);
    } catch (error) {
      throw new ReplayFileError(this.files[this.fileIndex]!, error);
    }
    if (records === null) return null;
    return records as ReadRecord[];
  }

  private async pace(batch: StreamRecord<GitHubEvent>[], signal: AbortSignal): Promise<void> {
    const speed = this.config.speed!;
    // Bad lines carry the wall clock as their time: pace by the events only.
    const events = batch.filter((r) => sourceRecordError(r) === undefined);
    if (events.length === 0) return;
    const last = events[events.length - 1]!.timestamp;
    this.anchor ??= { wall: Date.now(), event: events[0]!.timestamp };
    const dueAt = this.anchor.wall + (last - this.anchor.event) / speed;
    const wait = dueAt - Date.now();
    if (wait <= 0) return;
    try {
      await delay(wait, undefined, { signal });
    } catch {
      // Aborted: hand the batch over; the runtime drains it and stops.
    }
  }
}

/**
 * Split `index` of `count` replays every count-th file of the ordered list, from its index-th:
 * with hour files, the splits read neighbouring hours at the same time, so the watermark
 * downstream (the minimum over splits) holds back at most about an hour of the others' results.
 * Contiguous ranges would make it hold back a split's whole range. Each split's files stay in
 * order, so each split is in event-time order on its own.
 */
export function splitFiles(files: readonly string[], split: SplitShare): string[] {
  return files.filter((_, i) => i % split.count === split.index);
}

/** `@codefeedr/plugin-github:replay` — GH Archive / NDJSON files of GitHub events. */
export const replayInput = defineInput({
  name: 'replay',
  description:
    'Replays GitHub events from GH Archive hour files or NDJSON (plain or .gz) in event-time order (a bounded reorder buffer; memory independent of file size), as fast as possible or paced by a speed factor. Splittable: in a split run each split replays every n-th file.',
  configSchema: replayInputConfigSchema,
  outputType: GitHubEventType,
  splittable: true,
  createSource: (config, ctx) => {
    const split = ctx?.split ?? { index: 0, count: 1 };
    // Each split would pace from its own first event: the splits' hours would play at once.
    if (split.count > 1 && config.speed !== undefined)
      throw new ConfigError(ctx.stageId, [
        `speed: a paced replay cannot run in ${split.count} splits (each split would pace from its own first event); leave speed out, or run without splits`,
      ]);
    return new GitHubReplaySource(config, ctx?.logger, split);
  },
});
