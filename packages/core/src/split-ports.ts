import type { MessagePort } from 'node:worker_threads';
import type { BufferMessage } from './buffer.js';
import type { DeadLetterDestination } from './dead-letter-destination.js';
import { CodefeedrError } from './errors.js';
import type { Logger } from './logger.js';
import type { StageMetricsSnapshot } from './metrics.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';

/**
 * The messages between a split run's main thread and one of its worker threads. Batches go
 * as structured clones; a worker has at most MAX_BATCHES_IN_FLIGHT unread batches per port, so
 * a slow main thread holds the splits back instead of queueing without bound.
 */
export type FromSplit =
  | { t: 'batch'; port: number; records: StreamRecord[] }
  | { t: 'dead-letters'; id: number; stageId: string; letters: BufferMessage[] }
  | { t: 'metrics'; stages: StageMetricsSnapshot[] }
  | { t: 'log'; level: LogLevel; message: string; fields: Record<string, unknown> }
  | { t: 'done'; stages: StageMetricsSnapshot[] }
  | { t: 'failed'; error: SerializedError };

export type ToSplit =
  | { t: 'ack'; port: number }
  | { t: 'dead-letters-stored'; id: number; error?: SerializedError }
  | { t: 'stop' };

/** An error as it crosses threads: a structured clone keeps neither its class nor its code. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  details?: JsonValue;
}

export function serializeError(error: unknown): SerializedError {
  const e = error as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown };
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(error),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
  };
}

// 4 left the threads waiting for acks while the main thread was off the CPU (three threads on
// two cores); 32 ran the day of hour files in bench:github about 5 % faster. 16 keeps most of
// that with half the memory for large records.
/**
 * A record cannot cross from a split's thread to the main thread: its value holds something
 * a structured clone refuses (a function, a symbol, a socket). Not retryable: it is the stage's
 * code, not the data, so the run fails naming the output.
 */
export class SplitRecordError extends CodefeedrError {
  constructor(ref: string, cause: unknown) {
    super(
      'SPLIT_RECORD_UNCLONEABLE',
      `Records of "${ref}" cannot cross from a split's worker thread to the main thread: ${(cause as Error)?.message ?? String(cause)}. Values that leave a parallel stage must be plain data (objects, arrays, strings, numbers, Dates, typed arrays); map them to plain data in the stage, or mark the stages that read them parallel too.`,
      { output: ref },
      { cause },
    );
  }
}

export const MAX_BATCHES_IN_FLIGHT = 16;

type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Worker side: log lines go to the main thread's logger (one place for the run's logs). */
export class PortLogger implements Logger {
  constructor(
    private readonly parent: MessagePort,
    private readonly fields: Record<string, unknown> = {},
  ) {}
  debug(message: string, fields?: Record<string, unknown>): void {
    this.post('debug', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.post('info', message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.post('warn', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.post('error', message, fields);
  }
  child(fields: Record<string, unknown>): Logger {
    return new PortLogger(this.parent, { ...this.fields, ...fields });
  }
  private post(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
    const all: Record<string, unknown> = {};
    // Errors lose their class and code in a structured clone; functions cannot cross at all.
    for (const [k, v] of Object.entries({ ...this.fields, ...fields }))
      all[k] = v instanceof Error ? serializeError(v) : typeof v === 'function' ? String(v) : v;
    const line: FromSplit = { t: 'log', level, message, fields: all };
    try {
      this.parent.postMessage(line);
    } catch {
      this.parent.postMessage({ ...line, fields: JSON.parse(JSON.stringify(all)) as object });
    }
  }
}

/** Worker side: a port's records to the main thread, waiting for acks once enough are unread. */
export class PortSink implements Sink<unknown> {
  private inFlight = 0;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly port: number,
    /** The output it carries (`stage` or `stage:output`), for errors. */
    private readonly ref: string,
    private readonly parent: MessagePort,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  /** The main thread has taken one of this port's batches. */
  acked(): void {
    this.inFlight--;
    this.wake();
  }

  async write(batch: readonly StreamRecord<unknown>[]): Promise<void> {
    const message: FromSplit = { t: 'batch', port: this.port, records: batch as StreamRecord[] };
    try {
      this.parent.postMessage(message);
    } catch (error) {
      throw new SplitRecordError(this.ref, error);
    }
    this.inFlight++;
    // Stopped: the main thread reads no more, so waiting for its acks would never end.
    while (this.inFlight >= MAX_BATCHES_IN_FLIGHT && !this.signal.aborted)
      await new Promise<void>((resolve) => (this.wakeUp = resolve));
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }
}

/**
 * Worker side: dead letters are stored by the main thread's one destination (a file or a
 * topic), so a split run has the same dead-letter files and topics as a run without splits.
 */
export class PortDeadLetters implements DeadLetterDestination {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();

  constructor(
    readonly kind: 'topic' | 'file',
    private readonly parent: MessagePort,
  ) {}

  locationOf(stageId: string): string {
    return `the main thread's dead letters of ${stageId}`;
  }

  send(stageId: string, letters: readonly BufferMessage[]): Promise<void> {
    const id = this.nextId++;
    const message: FromSplit = {
      t: 'dead-letters',
      id,
      stageId,
      letters: letters as BufferMessage[],
    };
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.parent.postMessage(message);
    });
  }

  stored(id: number, error: SerializedError | undefined): void {
    const waiting = this.waiting.get(id);
    this.waiting.delete(id);
    if (error === undefined) waiting?.resolve();
    else waiting?.reject(Object.assign(new Error(error.message), error));
  }

  async close(): Promise<void> {}
}

/** Main side: one split's records of one port, in the order the worker sent them. */
export class PortSource implements Source<unknown> {
  private readonly queue: StreamRecord[][] = [];
  private ended = false;
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly ack: () => void,
    private readonly waitMs: number,
  ) {}

  /** A batch the worker sent. */
  push(records: StreamRecord[]): void {
    this.queue.push(records);
    this.wake();
  }

  /** The worker finished: once the queue is read, the source has ended. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  async poll(_max: number, signal: AbortSignal): Promise<StreamRecord[] | null> {
    if (this.queue.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.waitMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
        if (signal.aborted) this.wake();
      });
    }
    const batch = this.queue.shift();
    if (batch !== undefined) {
      this.ack();
      return batch;
    }
    return this.ended ? null : [];
  }

  position(): JsonValue {
    return null;
  }
  restore(): void {}
  async close(): Promise<void> {}

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }
}
