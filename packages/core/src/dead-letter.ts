import type { BufferMessage } from './buffer.js';
import { redactText } from './console-logger.js';
import type { StageMetrics } from './metrics.js';
import type { JsonValue, StreamRecord } from './record.js';
import { DEAD_LETTER_ERROR_CODE_HEADER, DEAD_LETTER_STAGE_HEADER } from './reserved-headers.js';
import { jsonSerde } from './serde-registry.js';

/**
 * What lands on a dead-letter topic (`<stageId>.dlq` by default), JSON-encoded whatever the
 * stage's serde, so any tool can read and replay it. `original` keeps the record exactly:
 * base64 of the bytes when it failed to decode, else its JSON value.
 */
export interface DeadLetterRecord {
  error: { code: string; name: string; message: string };
  pipeline: string;
  stageId: string;
  /** `<package>:<component>` when the stage came from a plugin, else null. */
  component: string | null;
  componentVersion: string | null;
  /** Times the record was tried (1 + retries for user code; 1 for decode/schema failures). */
  attempts: number;
  /** Which input of the stage the record came in on (null for an input stage's own output). */
  inputIndex: number | null;
  /** Buffer coordinates of the original, when it came through a buffer. */
  origin: { topic: string; partition: number; offset: string } | null;
  original:
    | { encoding: 'base64'; data: string }
    | { encoding: 'json'; value: JsonValue }
    | { encoding: 'text'; value: string };
  key: string | null;
  timestamp: number;
  headers: Record<string, string> | null;
  failedAt: number;
}

export interface DeadLetterContext {
  pipeline: string;
  stageId: string;
  component?: string | undefined;
  componentVersion?: string | undefined;
}

function errorFields(error: unknown): DeadLetterRecord['error'] {
  const e = error as { code?: unknown; name?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'USER_CODE_FAILED',
    name: typeof e?.name === 'string' ? e.name : 'Error',
    // Secrets never leave through a dead-letter record either.
    message: redactText(typeof e?.message === 'string' ? e.message : String(error)),
  };
}

function originalOf(value: unknown): DeadLetterRecord['original'] {
  if (value instanceof Uint8Array) {
    return { encoding: 'base64', data: Buffer.from(value).toString('base64') };
  }
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return { encoding: 'json', value: JSON.parse(text) as JsonValue };
  } catch {
    // fall through: not JSON-representable (BigInt, cycles)
  }
  return { encoding: 'text', value: String(value) };
}

/**
 * Collects a stage's dead letters during a batch (synchronously: the operator chain calls it
 * per failing record) and hands them to the runtime, which sends them with the batch's
 * outputs before committing, so dead letters are at-least-once too.
 */
export class DeadLetterQueue {
  private pending: BufferMessage[] = [];

  constructor(
    readonly topic: string,
    private readonly context: DeadLetterContext,
    private readonly metrics: StageMetrics,
  ) {}

  /** A record whose value (or bytes, when it failed to decode) could not be processed. */
  add(
    record: {
      key?: string | undefined;
      value: unknown;
      timestamp: number;
      headers?: Record<string, string> | undefined;
    },
    error: unknown,
    details: { attempts: number; inputIndex: number | null; origin?: DeadLetterRecord['origin'] },
  ): void {
    const letter: DeadLetterRecord = {
      error: errorFields(error),
      pipeline: this.context.pipeline,
      stageId: this.context.stageId,
      component: this.context.component ?? null,
      componentVersion: this.context.componentVersion ?? null,
      attempts: details.attempts,
      inputIndex: details.inputIndex,
      origin: details.origin ?? null,
      original: originalOf(record.value),
      key: record.key ?? null,
      timestamp: record.timestamp,
      headers: record.headers ?? null,
      failedAt: Date.now(),
    };
    this.pending.push({
      key: record.key,
      value: jsonSerde.encode(letter),
      timestamp: record.timestamp,
      headers: {
        [DEAD_LETTER_ERROR_CODE_HEADER]: letter.error.code,
        [DEAD_LETTER_STAGE_HEADER]: this.context.stageId,
      },
    });
    this.metrics.deadLettered++;
  }

  /** The operator-chain facing callback (see operator-chain.ts). */
  readonly sink = (record: StreamRecord, error: unknown, attempts: number, inputIndex: number) => {
    this.add(record, error, { attempts, inputIndex });
  };

  /** Dead letters collected since the last call. */
  drain(): BufferMessage[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  get size(): number {
    return this.pending.length;
  }
}

/** Decodes a message read from a dead-letter topic. */
export function decodeDeadLetter(bytes: Uint8Array): DeadLetterRecord {
  return jsonSerde.decode(bytes) as DeadLetterRecord;
}
