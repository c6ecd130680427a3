import { describe, expect, it } from 'vitest';
import { getSerde, jsonSerde, msgpackSerde, registerSerde, serdeNames } from './serde-registry.js';

const samples: unknown[] = [
  null,
  0,
  -1.5,
  'héllo ☃',
  [1, 'two', { three: [3] }],
  {
    id: 'e1',
    payload: { commits: [{ sha: 'abc', distinct: true }], size: 2 },
    created_at: '2024-01-01T00:00:00Z',
  },
];

describe('serdes', () => {
  for (const serde of [jsonSerde, msgpackSerde]) {
    it(`${serde.name} round-trips JSON values`, () => {
      for (const value of samples) expect(serde.decode(serde.encode(value))).toEqual(value);
    });
  }

  it('msgpack is more compact than json for a typical event', () => {
    const event = samples.at(-1);
    expect(msgpackSerde.encode(event).length).toBeLessThan(jsonSerde.encode(event).length);
  });

  it('bad bytes throw DecodeError (which the runtime dead-letters)', () => {
    expect(() => jsonSerde.decode(new Uint8Array([0xff, 0xfe]))).toThrow(
      expect.objectContaining({ code: 'DECODE_FAILED' }),
    );
    expect(() => jsonSerde.decode(new TextEncoder().encode('{"a":'))).toThrow(
      expect.objectContaining({ code: 'DECODE_FAILED' }),
    );
    expect(() => msgpackSerde.decode(new Uint8Array([0x92, 0x01]))).toThrow(
      expect.objectContaining({ code: 'DECODE_FAILED' }),
    );
    expect(() => msgpackSerde.decode(new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'DECODE_FAILED' }),
    );
  });

  it('custom serdes register by name; unknown names list the known ones', () => {
    const upper = {
      name: 'test-upper',
      encode: (v: unknown) => new TextEncoder().encode(String(v).toUpperCase()),
      decode: (b: Uint8Array) => new TextDecoder().decode(b),
    };
    registerSerde(upper);
    expect(getSerde('test-upper').decode(getSerde('test-upper').encode('abc'))).toBe('ABC');
    expect(() => registerSerde(upper)).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_SERDE' }),
    );
    registerSerde(upper, { replace: true });
    expect(serdeNames()).toEqual(expect.arrayContaining(['json', 'msgpack', 'test-upper']));
    let error: Error | undefined;
    try {
      getSerde('avro');
    } catch (e) {
      error = e as Error;
    }
    expect(error).toMatchObject({ code: 'UNKNOWN_SERDE' });
    expect(error!.message).toContain('json, msgpack, test-upper');
  });
});
