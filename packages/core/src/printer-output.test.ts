import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PrinterSink, printerOutput } from './printer-output.js';
import type { StreamRecord } from './record.js';

async function printed(
  format: 'json' | 'record' | 'text' | 'pretty',
  batch: StreamRecord[],
  prefix = '',
): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const sink = new PrinterSink(out, { format, prefix });
  await sink.write(batch);
  await sink.flush();
  return Buffer.concat(chunks).toString('utf8');
}

const record: StreamRecord = {
  key: 'k',
  value: { n: 1 },
  timestamp: Date.UTC(2015, 0, 1),
  headers: undefined,
};

describe('printerOutput', () => {
  it('prints each record as one line in the chosen format', async () => {
    expect(await printed('json', [record, { value: 'x', timestamp: 0 }], '> ')).toBe(
      '> {"n":1}\n> "x"\n',
    );
    expect(await printed('record', [record])).toBe(
      '{"key":"k","value":{"n":1},"timestamp":1420070400000}\n',
    );
    expect(await printed('text', [{ value: 42, timestamp: 0 }])).toBe('42\n');
    expect(await printed('pretty', [record])).toBe('k @ 2015-01-01T00:00:00.000Z: { n: 1 }\n');
  });

  it('prints values JSON cannot hold instead of dropping them', async () => {
    expect(await printed('json', [{ value: 7n, timestamp: 0 }])).toBe(
      '7n (not JSON: Do not know how to serialize a BigInt)\n',
    );
  });

  it('is a component with a validated config', () => {
    expect(printerOutput.create('p', { format: 'pretty' }).config).toEqual({
      format: 'pretty',
      prefix: '',
    });
    expect(() => printerOutput.create('p', { format: 'xml' } as never)).toThrow(/format/);
  });
});
