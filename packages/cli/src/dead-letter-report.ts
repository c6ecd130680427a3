import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { redactText, type Pipeline, type RunSummary } from '@codefeedr/core';

/** One dead letter as the summary shows it: where it is kept and why it is there. */
export interface DeadLetterReason {
  /** `<dead-letter file>:<line>`, or `topic <name>`. */
  readonly at: string;
  readonly code: string;
  readonly message: string;
}

export interface StageDeadLetters {
  readonly stage: string;
  readonly count: number;
  readonly location: string;
  /** The first few of this run's dead letters (files only: a topic is read with its own tools). */
  readonly reasons: readonly DeadLetterReason[];
}

const CHUNK = 64 * 1024;

/**
 * The dead letters of one `codefeedr run`, with their reasons. Dead-letter files are appended
 * to across runs, so their sizes are noted before the run and only what this run added is
 * read — the first few lines, with their line numbers in the file.
 */
export class DeadLetterReport {
  private readonly before = new Map<string, number>();

  constructor(
    pipeline: Pipeline,
    private readonly limit = 3,
  ) {
    const { dir, topicSuffix } = pipeline.definition.deadLetter;
    const folder = resolve(dir ?? join('.codefeedr', 'dead-letters', pipeline.name));
    for (const stage of pipeline.stages) {
      const file = join(folder, `${stage.id}${topicSuffix}.ndjson`);
      this.before.set(file, sizeOf(file));
    }
  }

  stages(summary: RunSummary): StageDeadLetters[] {
    return summary.deadLetters.map(({ stage, count, location }) => ({
      stage,
      count,
      location,
      reasons: location.startsWith('topic ') ? [] : this.read(location),
    }));
  }

  private read(file: string): DeadLetterReason[] {
    const from = this.before.get(file) ?? 0;
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return [];
    }
    try {
      const buffer = Buffer.alloc(CHUNK);
      // Line number of `from`: the newlines before it.
      let line = 1;
      for (let at = 0; at < from;) {
        const n = readSync(fd, buffer, 0, Math.min(CHUNK, from - at), at);
        if (n === 0) break;
        for (let i = 0; i < n; i++) if (buffer[i] === 10) line++;
        at += n;
      }
      const reasons: DeadLetterReason[] = [];
      let pending = '';
      for (let at = from; reasons.length < this.limit;) {
        const n = readSync(fd, buffer, 0, CHUNK, at);
        if (n === 0) break;
        at += n;
        pending += buffer.toString('utf8', 0, n);
        let newline: number;
        while (reasons.length < this.limit && (newline = pending.indexOf('\n')) >= 0) {
          reasons.push(reasonOf(pending.slice(0, newline), `${file}:${line}`));
          pending = pending.slice(newline + 1);
          line++;
        }
        // A huge dead letter (its original value) need not be read whole for its reason.
        if (pending.length > 16 * CHUNK) break;
      }
      return reasons;
    } finally {
      closeSync(fd);
    }
  }
}

function reasonOf(text: string, at: string): DeadLetterReason {
  try {
    const letter = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return {
      at,
      code: typeof letter.error?.code === 'string' ? letter.error.code : 'UNKNOWN',
      message: redactText(
        typeof letter.error?.message === 'string' ? letter.error.message : '(no message)',
      ),
    };
  } catch {
    return { at, code: 'UNKNOWN', message: '(not a dead-letter record)' };
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
