import { getSerde, type Serde } from '@codefeedr/core';
import { DecodeError } from '@codefeedr/core';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Raw UTF-8 text: for topics whose messages are plain strings (logs, CSV lines). */
export const stringSerde: Serde<string> = {
  name: 'string',
  encode: (value) => utf8Encoder.encode(typeof value === 'string' ? value : String(value)),
  decode(bytes) {
    try {
      return utf8Decoder.decode(bytes);
    } catch (error) {
      throw new DecodeError('string', error);
    }
  },
};

/** `string`, or any serde registered in core (`json`, `msgpack`, custom ones). */
export function valueSerde(name: string): Serde {
  return name === 'string' ? (stringSerde as Serde) : getSerde(name);
}
