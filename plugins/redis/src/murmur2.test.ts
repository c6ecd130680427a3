import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from './murmur2.js';

// Expected values from Apache Kafka's UtilsTest.testMurmur2 (computed by Kafka's Java implementation).
const KAFKA_VECTORS: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

describe('murmur2', () => {
  it.each(KAFKA_VECTORS)('hashes %s as Kafka does', (input, expected) => {
    expect(murmur2(new TextEncoder().encode(input))).toBe(expected);
  });

  it('maps keys to partitions as positive(murmur2) % n', () => {
    expect(partitionForKey('foobar', 7)).toBe((-790332482 & 0x7fffffff) % 7);
    for (let n = 1; n <= 16; n++) expect(partitionForKey('21', n)).toBeLessThan(n);
  });
});
