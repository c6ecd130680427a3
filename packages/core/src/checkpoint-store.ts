import { join } from 'node:path';
import { readFileIfExists, replaceFileAtomically, safeName } from './atomic-file.js';
import { CodefeedrError } from './errors.js';
import type { JsonValue } from './record.js';

/**
 * What a stage worker (or the whole DAG in inline mode) snapshots at a batch boundary,
 * before it commits positions.
 */
export interface Checkpoint {
  pipeline: string;
  /** Stage id, or `inline` for the whole DAG run inline. */
  unit: string;
  /** Worker instance (several workers of one stage keep separate checkpoints). */
  instance: string;
  /** Increases by one per checkpoint of this unit. */
  id: number;
  takenAt: number;
  /** Source positions (input stages) or consumer positions, keyed by stage id / "topic/partition". */
  positions: Record<string, JsonValue>;
  /** Operator chain state per transform stage id. */
  state: Record<string, JsonValue>;
  /** Event-time watermark per stage id (null = none yet). */
  watermarks: Record<string, number | null>;
}

/** Where checkpoints live: a file in core; Kafka/Redis stores plug in through this interface. */
export interface CheckpointStore {
  load(pipeline: string, unit: string, instance: string): Promise<Checkpoint | undefined>;
  save(checkpoint: Checkpoint): Promise<void>;
}

export class CheckpointCorruptError extends CodefeedrError {
  constructor(file: string, cause: unknown) {
    super(
      'CHECKPOINT_CORRUPT',
      `Checkpoint file ${file} cannot be read as a checkpoint. Restore it from a backup, or delete it to restart the stage from its committed positions.`,
      { file },
      { cause },
    );
  }
}

/**
 * One JSON file per unit and instance: `<dir>/<pipeline>/<unit>.<instance>.json`, replaced
 * atomically (write `.tmp`, fsync, rename) so a crash mid-write leaves the previous checkpoint.
 */
export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly dir: string) {}

  fileFor(pipeline: string, unit: string, instance: string): string {
    return join(this.dir, safeName(pipeline), `${safeName(unit)}.${safeName(instance)}.json`);
  }

  async load(pipeline: string, unit: string, instance: string): Promise<Checkpoint | undefined> {
    const file = this.fileFor(pipeline, unit, instance);
    const text = await readFileIfExists(file);
    if (text === undefined) return undefined;
    try {
      const checkpoint = JSON.parse(text) as Checkpoint;
      if (typeof checkpoint.id !== 'number' || typeof checkpoint.positions !== 'object') {
        throw new Error('missing id or positions');
      }
      return checkpoint;
    } catch (error) {
      throw new CheckpointCorruptError(file, error);
    }
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    const file = this.fileFor(checkpoint.pipeline, checkpoint.unit, checkpoint.instance);
    await replaceFileAtomically(file, `${file}.tmp`, JSON.stringify(checkpoint));
  }
}
