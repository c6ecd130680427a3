import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  NdjsonFileSource,
  ndjsonFileInput,
  badSourceRecord,
  defineInput,
  sourceRecordError,
  z,
} from '@codefeedr/core';
import type { JsonValue, Source, StreamRecord } from '@codefeedr/core';
import { ReplayFileError } from './errors.js';
import { GitHubEventType, type GitHubEvent } from './event-types.js';
import { compareEventIds } from './recent-id-window.js';

export const replayInputConfigSchema = z
  .object({
    /** GH Archive hour files (`2015-01-01-12.json.gz`), NDJSON files (plain or .gz) or folders of them. */
    paths: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /**
     * `event-time` (default): each file is read whole and emitted sorted by created_at, then id
     * (memory: one file). `file`: emitted in file order, streaming (memory: one chunk).
     */
    order: z.enum(['event-time', 'file']).default('event-time'),
    /** Pace by event time: 1 = as it happened, 60 = an hour per minute. Absent: as fast as possible. */
    speed: z.number().positive().optional(),
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

interface ReplayPosition {
  /** Index into the ordered file list, and the file's name as a sanity check. */
  file: number;
  name: string | null;
  /** event-time order: records of the sorted file already emitted. */
  index: number;
  /** file order: the NDJSON reader's position in the file. */
  reader: JsonValue;
}

/**
 * Replays GitHub events from disk. Parsing is core's NdjsonFileSource (gzip detection,
 * chunked reads, bad lines as dead-letter records); this adds GH Archive file ordering,
 * event-time order within a file, pacing and a position across files.
 */
export class GitHubReplaySource implements Source<GitHubEvent> {
  private readonly files: string[];
  private fileIndex = 0;
  private reader: NdjsonFileSource | undefined;
  /** event-time order: the current file, sorted, and how much of it was emitted. */
  private sorted: StreamRecord<GitHubEvent>[] | undefined;
  private index = 0;
  private readerPosition: JsonValue = null;
  /** file order: a restored reader position, applied when the file is reopened. */
  private restoreReaderAt: JsonValue = null;
  /** Pacing: the wall clock and event time the replay is anchored at. */
  private anchor: { wall: number; event: number } | undefined;

  constructor(private readonly config: ReplayInputConfig) {
    this.files = replayFiles(config.paths);
  }

  async poll(maxRecords: number, signal: AbortSignal): Promise<StreamRecord<GitHubEvent>[] | null> {
    // Paced replays hand out small batches so a batch spans little event time.
    const max = this.config.speed === undefined ? maxRecords : Math.min(maxRecords, 100);
    const batch: StreamRecord<GitHubEvent>[] = [];
    while (batch.length < max && this.fileIndex < this.files.length) {
      const taken =
        this.config.order === 'event-time'
          ? await this.takeSorted(max - batch.length)
          : await this.takeStreaming(max - batch.length);
      if (taken === null) this.nextFile();
      else batch.push(...taken);
    }
    if (batch.length === 0) return this.fileIndex >= this.files.length ? null : [];
    if (this.config.speed !== undefined) await this.pace(batch, signal);
    return batch;
  }

  position(): JsonValue {
    const position: ReplayPosition = {
      file: this.fileIndex,
      name: this.files[this.fileIndex] === undefined ? null : basename(this.files[this.fileIndex]!),
      index: this.index,
      reader: this.readerPosition,
    };
    return position as unknown as JsonValue;
  }

  async restore(position: JsonValue): Promise<void> {
    const saved = position as unknown as Partial<ReplayPosition> | null;
    await this.reader?.close();
    this.reader = undefined;
    this.sorted = undefined;
    this.anchor = undefined;
    this.fileIndex = typeof saved?.file === 'number' ? saved.file : 0;
    this.index = typeof saved?.index === 'number' ? saved.index : 0;
    this.readerPosition = saved?.reader ?? null;
    this.restoreReaderAt = this.readerPosition;
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
      }),
    );
    return this.reader;
  }

  private nextFile(): void {
    void this.reader?.close();
    this.reader = undefined;
    this.sorted = undefined;
    this.fileIndex++;
    this.index = 0;
    this.readerPosition = null;
    this.restoreReaderAt = null;
  }

  /** Records of the current file in event-time order; null when the file is done. */
  private async takeSorted(max: number): Promise<StreamRecord<GitHubEvent>[] | null> {
    if (this.sorted === undefined) {
      const reader = this.openReader();
      const all: StreamRecord<GitHubEvent>[] = [];
      for (;;) {
        const chunk = await this.readChunk(reader, 10_000);
        if (chunk === null) break;
        for (const record of chunk) all.push(record);
      }
      await reader.close();
      this.reader = undefined;
      // Stable sort: created_at, then numeric id; bad lines keep their place among equals.
      all.sort((a, b) =>
        a.timestamp !== b.timestamp
          ? a.timestamp - b.timestamp
          : isEventShaped(a.value) && isEventShaped(b.value)
            ? compareEventIds(a.value.id, b.value.id)
            : 0,
      );
      this.sorted = all;
    }
    if (this.index >= this.sorted.length) return null;
    const taken = this.sorted.slice(this.index, this.index + max);
    this.index += taken.length;
    return taken;
  }

  private async takeStreaming(max: number): Promise<StreamRecord<GitHubEvent>[] | null> {
    const reader = this.openReader();
    if (this.restoreReaderAt !== null) {
      await reader.restore(this.restoreReaderAt);
      this.restoreReaderAt = null;
    }
    const chunk = await this.readChunk(reader, max);
    this.readerPosition = reader.position();
    return chunk;
  }

  private async readChunk(
    reader: NdjsonFileSource,
    max: number,
  ): Promise<StreamRecord<GitHubEvent>[] | null> {
    let records: StreamRecord<unknown>[] | null;
    try {
      records = await reader.poll(max);
    } catch (error) {
      throw new ReplayFileError(this.files[this.fileIndex]!, error);
    }
    if (records === null) return null;
    // A JSON line that is not an event goes to the dead-letter topic, like an unparseable one.
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (sourceRecordError(record) === undefined && !isEventShaped(record.value)) {
        records[i] = badSourceRecord(
          JSON.stringify(record.value),
          `${this.files[this.fileIndex]}: a line is not a GitHub event (needs string id, type, created_at and repo.name)`,
          record.timestamp,
        );
      }
    }
    return records as StreamRecord<GitHubEvent>[];
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

/** `@codefeedr/plugin-github:replay` — GH Archive / NDJSON files of GitHub events. */
export const replayInput = defineInput({
  name: 'replay',
  description:
    'Replays GitHub events from GH Archive hour files or NDJSON (plain or .gz) in event-time order, as fast as possible or paced by a speed factor.',
  configSchema: replayInputConfigSchema,
  outputType: GitHubEventType,
  createSource: (config) => new GitHubReplaySource(config),
});
