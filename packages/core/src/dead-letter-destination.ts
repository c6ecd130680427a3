import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Buffer as CodefeedrBuffer, BufferMessage, BufferProducer } from './buffer.js';

/**
 * Where a run's dead letters end up. Every run mode uses one, so bad records are never
 * discarded: a topic of a buffer that outlives the run, or an NDJSON file (the embedded
 * default, since the run's own memory buffer ends with the run).
 */
export interface DeadLetterDestination {
  readonly kind: 'topic' | 'file';
  /** Where the stage's dead letters go, for people: a file path or `topic <name>`. */
  locationOf(stageId: string): string;
  send(stageId: string, letters: readonly BufferMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** `<stageId><suffix>` topics on a buffer (ensured on first use: Kafka does not auto-create in production). */
export class TopicDeadLetters implements DeadLetterDestination {
  readonly kind = 'topic';
  private producer: BufferProducer | undefined;
  private readonly ensured = new Set<string>();

  constructor(
    private readonly buffer: CodefeedrBuffer,
    private readonly suffix: string,
    private readonly clientId: string,
  ) {}

  topicOf(stageId: string): string {
    return `${stageId}${this.suffix}`;
  }

  locationOf(stageId: string): string {
    return `topic ${this.topicOf(stageId)}`;
  }

  async ensure(stageId: string): Promise<void> {
    const topic = this.topicOf(stageId);
    if (this.ensured.has(topic)) return;
    await this.buffer.admin.ensureTopic({ name: topic, partitions: 1 });
    this.ensured.add(topic);
  }

  async send(stageId: string, letters: readonly BufferMessage[]): Promise<void> {
    if (letters.length === 0) return;
    await this.ensure(stageId);
    this.producer ??= await this.buffer.producer({ clientId: this.clientId });
    await this.producer.send(this.topicOf(stageId), letters);
  }

  async close(): Promise<void> {
    await this.producer?.close();
  }
}

const NEWLINE = new Uint8Array([10]);

/**
 * One NDJSON file per stage, `<dir>/<stageId><suffix>.ndjson`, appended to and synced before
 * the run commits positions (dead letters are at-least-once like everything else). Created on
 * the first dead letter only.
 */
export class FileDeadLetters implements DeadLetterDestination {
  readonly kind = 'file';
  private readonly files = new Map<string, FileHandle>();
  private readonly dir: string;

  constructor(
    dir: string,
    private readonly suffix: string,
  ) {
    this.dir = resolve(dir);
  }

  locationOf(stageId: string): string {
    return join(this.dir, `${stageId}${this.suffix}.ndjson`);
  }

  async send(stageId: string, letters: readonly BufferMessage[]): Promise<void> {
    if (letters.length === 0) return;
    let file = this.files.get(stageId);
    if (file === undefined) {
      const path = this.locationOf(stageId);
      await mkdir(dirname(path), { recursive: true });
      file = await open(path, 'a');
      this.files.set(stageId, file);
    }
    const parts: Uint8Array[] = [];
    for (const letter of letters) parts.push(letter.value, NEWLINE);
    await file.write(Buffer.concat(parts));
    await file.datasync();
  }

  async close(): Promise<void> {
    for (const file of this.files.values()) await file.close();
    this.files.clear();
  }
}
