import { Packr } from 'msgpackr';
import { CodefeedrError, DecodeError } from './errors.js';
import type { Serde } from './serde.js';

// fatal: malformed UTF-8 is a decode error (dead-lettered), not silently replaced characters.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** JSON as UTF-8 bytes: the default, readable by any consumer. `undefined` encodes as null. */
export const jsonSerde: Serde = {
  name: 'json',
  encode(value) {
    // Buffer.from allocates small strings from Node's pool: several times faster than TextEncoder here.
    return Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');
  },
  decode(bytes) {
    try {
      return JSON.parse(utf8Decoder.decode(bytes)) as unknown;
    } catch (error) {
      throw new DecodeError('json', error);
    }
  },
};

// msgpackr: compact, fast and well kept. Plain maps (no record extension) so other
// MessagePack implementations (Java, Python consumers) can read the bytes.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export const msgpackSerde: Serde = {
  name: 'msgpack',
  encode(value) {
    return packr.pack(value);
  },
  decode(bytes) {
    if (bytes.length === 0) throw new DecodeError('msgpack', new Error('empty message'));
    try {
      return packr.unpack(bytes) as unknown;
    } catch (error) {
      throw new DecodeError('msgpack', error);
    }
  },
};

export class UnknownSerdeError extends CodefeedrError {
  constructor(name: string, known: readonly string[]) {
    super(
      'UNKNOWN_SERDE',
      `No serde named "${name}". Known serdes: ${known.join(', ')}. Use one of them or register yours with registerSerde() before building the pipeline.`,
      { name, known },
    );
  }
}

export class DuplicateSerdeError extends CodefeedrError {
  constructor(name: string) {
    super(
      'DUPLICATE_SERDE',
      `A serde named "${name}" is already registered. Pick another name, or pass { replace: true } to replace it on purpose.`,
      { name },
    );
  }
}

const serdes = new Map<string, Serde>([
  [jsonSerde.name, jsonSerde],
  [msgpackSerde.name, msgpackSerde],
]);

/** Makes a custom serde available by name to `setStageOptions(id, { serde: name })`. */
export function registerSerde(serde: Serde, options: { replace?: boolean } = {}): void {
  if (serdes.has(serde.name) && !options.replace) throw new DuplicateSerdeError(serde.name);
  serdes.set(serde.name, serde);
}

/** The serde registered as `name`, or UnknownSerdeError listing the known ones. */
export function getSerde(name: string): Serde {
  const serde = serdes.get(name);
  if (serde === undefined) throw new UnknownSerdeError(name, [...serdes.keys()]);
  return serde;
}

export function serdeNames(): string[] {
  return [...serdes.keys()];
}
