import { isRetryable } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { PostgresStatementError, isRecordRejection, isTransientPostgresError } from './errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('classifying driver errors', () => {
  it('treats connection loss, timeouts and concurrency conflicts as transient', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      '08006',
      '08001',
      '40001',
      '40P01',
      '57P01',
      '57014',
      '53300',
    ])
      expect(isTransientPostgresError(withCode(code)), code).toBe(true);
    expect(isTransientPostgresError(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('treats schema, permission and syntax errors as permanent', () => {
    for (const code of ['42P01', '42501', '42601', '42703', '3D000', '28P01'])
      expect(isTransientPostgresError(withCode(code)), code).toBe(false);
  });

  it('blames the record for data exceptions and constraint violations only', () => {
    for (const code of [
      '22021',
      '22P02',
      '22P05',
      '22001',
      '22003',
      '23505',
      '23514',
      '23502',
      '54000',
    ])
      expect(isRecordRejection(withCode(code)), code).toBe(true);
    for (const code of ['42P01', '08006', '40001', 'P0001', 'ECONNRESET'])
      expect(isRecordRejection(withCode(code)), code).toBe(false);
  });

  it('marks a statement error retryable exactly when its cause is transient', () => {
    expect(isRetryable(new PostgresStatementError('write', 't', withCode('40P01')))).toBe(true);
    expect(isRetryable(new PostgresStatementError('write', 't', withCode('42P01')))).toBe(false);
  });
});
