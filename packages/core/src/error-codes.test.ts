// The closed union of core's error codes is complete (every code a core error is raised with
// is in it) and documented (the README's table lists each one).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CodefeedrError, CORE_ERROR_CODES, isCodefeedrError, isRetryable } from './errors.js';

const src = import.meta.dirname;

describe('error codes', () => {
  it('every code raised in core is in CORE_ERROR_CODES, and the README documents each', () => {
    const raised = new Set<string>();
    for (const file of readdirSync(src)) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      const text = readFileSync(join(src, file), 'utf8');
      // super('CODE', ...) and super(\n 'CODE', ...) in CodefeedrError subclasses.
      for (const m of text.matchAll(/super\(\s*'([A-Z][A-Z0-9_]+)'/g)) raised.add(m[1]!);
    }
    expect(raised.size).toBeGreaterThan(20);
    expect([...raised].filter((code) => !(code in CORE_ERROR_CODES))).toEqual([]);
    const readme = readFileSync(join(src, '..', 'README.md'), 'utf8');
    const missing = Object.keys(CORE_ERROR_CODES).filter(
      (code) => !readme.includes(`| \`${code}\``),
    );
    expect(missing).toEqual([]);
  });

  it("isCodefeedrError recognises errors from another copy of core; retryable is the error's own word", () => {
    const foreign = Object.assign(new Error('from a CJS copy'), { code: 'X' });
    Object.defineProperty(foreign, Symbol.for('codefeedr.error'), { value: true });
    expect(isCodefeedrError(foreign)).toBe(true);
    expect(isCodefeedrError(new Error('plain'))).toBe(false);
    expect(isRetryable(new CodefeedrError('CONFIG_INVALID', 'no'))).toBe(false);
    expect(isRetryable(new CodefeedrError('X_RESET', 'yes', {}, { retryable: true }))).toBe(true);
    expect(isRetryable(new TypeError('bug'))).toBe(false);
    expect(isRetryable(Object.assign(new Error('ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
  });
});
