const scratch = new Uint8Array(256);

/**
 * UTF-8 bytes of `key`. Keys are hashed once per record, and TextEncoder allocates a new
 * array per call (it dominated send profiles), so short ASCII keys are copied into a reused
 * scratch array; anything else goes through Buffer.from (pooled allocation).
 */
function utf8Bytes(key: string): [Uint8Array, number] {
  const length = key.length;
  if (length <= scratch.length) {
    let i = 0;
    for (; i < length; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) break;
      scratch[i] = c;
    }
    if (i === length) return [scratch, length];
  }
  const bytes = Buffer.from(key, 'utf8');
  return [bytes, bytes.length];
}

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c) over the
 * UTF-8 bytes of `key`, as a signed 32-bit int. Used so keys land on the same partition
 * numbers in every buffer, like Kafka's default partitioner.
 */
export function murmur2(key: string | Uint8Array): number {
  const [data, length] = typeof key === 'string' ? utf8Bytes(key) : [key, key.length];
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  switch (length & 3) {
    case 3:
      h ^= data[whole + 2]! << 16;
    // falls through
    case 2:
      h ^= data[whole + 1]! << 8;
    // falls through
    case 1:
      h ^= data[whole]!;
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's default partition for a key: toPositive(murmur2(key)) % partitions. */
export function murmur2Partition(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
