import { describe, expect, it } from 'vitest';
import { rangeAssignment } from './group-membership.js';

describe('rangeAssignment', () => {
  it('gives every partition to exactly one member, in contiguous ranges differing by at most one', () => {
    for (let partitions = 0; partitions <= 12; partitions++) {
      for (let count = 1; count <= 5; count++) {
        const members = Array.from({ length: count }, (_, i) => `member-${(i * 7) % count}-${i}`);
        const shares = members.map((m) => rangeAssignment(partitions, members, m));
        expect(shares.flat().sort((a, b) => a - b)).toEqual(
          Array.from({ length: partitions }, (_, i) => i),
        );
        const sizes = shares.map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        for (const share of shares)
          share.forEach((p, i) => i > 0 && expect(p).toBe(share[i - 1]! + 1));
      }
    }
  });

  it('does not depend on the order members are listed in, and gives nothing to a non-member', () => {
    expect(rangeAssignment(4, ['b', 'a'], 'a')).toEqual([0, 1]);
    expect(rangeAssignment(4, ['a', 'b'], 'b')).toEqual([2, 3]);
    expect(rangeAssignment(4, ['a', 'b'], 'c')).toEqual([]);
  });
});
