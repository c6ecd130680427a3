import type { BufferMessage, BufferProducer } from '@codefeedr/core';

/** What the conformance suites put in a buffer: a key, its per-key sequence and a unique id. */
export interface TestRecordValue {
  id: string;
  key: string;
  seq: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `count` values spread round-robin over `keys` keys; each key's `seq` counts up from 0, so
 * per-key order can be checked on the way out. Ids are `<prefix>-<i>`, unique per prefix.
 */
export function testValues(
  count: number,
  options: { keys?: number; prefix?: string } = {},
): TestRecordValue[] {
  const { keys = 16, prefix = 'r' } = options;
  const seqs = new Array<number>(keys).fill(0);
  const out = new Array<TestRecordValue>(count);
  for (let i = 0; i < count; i++) {
    const k = i % keys;
    out[i] = { id: `${prefix}-${i}`, key: `key-${k}`, seq: seqs[k]!++ };
  }
  return out;
}

/** testValues() as buffer messages: JSON bytes, keyed by `key`, with a `test-id` header. */
export function testRecords(
  count: number,
  options: { keys?: number; prefix?: string; timestamp?: (i: number) => number } = {},
): BufferMessage[] {
  const { timestamp = () => Date.now() } = options;
  return testValues(count, options).map((value, i) => ({
    key: value.key,
    value: encoder.encode(JSON.stringify(value)),
    timestamp: timestamp(i),
    headers: { 'test-id': value.id },
  }));
}

export function decodeTestRecord(bytes: Uint8Array): TestRecordValue {
  return JSON.parse(decoder.decode(bytes)) as TestRecordValue;
}

/** Sends `records` in batches of `batchSize`, one awaited send per batch. */
export async function sendInBatches(
  producer: BufferProducer,
  topic: string,
  records: readonly BufferMessage[],
  batchSize = 200,
): Promise<void> {
  for (let i = 0; i < records.length; i += batchSize) {
    await producer.send(topic, records.slice(i, i + batchSize));
  }
}
