import { describe, expect, it } from 'vitest';
import {
  compareStreamIds,
  formatStreamId,
  lastIdBeforeTimestamp,
  nextStreamId,
  parseStreamId,
} from './stream-id.js';

describe('stream ids', () => {
  it('parses, orders and steps ids the way Redis orders them', () => {
    expect(parseStreamId('1700000000000-7')).toEqual({ ms: 1_700_000_000_000, seq: 7 });
    for (const bad of ['', '-', '12', '12-', '-3', 'a-1', '1-b', '1-2-3', '+', '$'])
      expect(parseStreamId(bad), bad).toBeUndefined();
    const ids = ['5-0', '4-10', '4-9', '10-0', '4-0'];
    const sorted = ids
      .map((id) => parseStreamId(id)!)
      .sort(compareStreamIds)
      .map(formatStreamId);
    expect(sorted).toEqual(['4-0', '4-9', '4-10', '5-0', '10-0']);
    expect(formatStreamId(nextStreamId(parseStreamId('4-9')!))).toBe('4-10');
  });

  it('starts a group just before a timestamp', () => {
    expect(lastIdBeforeTimestamp(0)).toBe('0');
    expect(lastIdBeforeTimestamp(1_000)).toBe('999-18446744073709551615');
  });
});
