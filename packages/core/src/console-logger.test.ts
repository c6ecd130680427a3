import { describe, expect, it } from 'vitest';
import {
  ConsoleLogger,
  redactSecrets,
  redactText,
  redactValues,
  registerSecret,
} from './console-logger.js';

describe('ConsoleLogger', () => {
  it('writes JSON lines with merged child fields', () => {
    const lines: string[] = [];
    const logger = new ConsoleLogger({
      format: 'json',
      level: 'info',
      write: (l) => lines.push(l),
      fields: { pipeline: 'p' },
    });
    logger.child({ stage: 's' }).info('hello', { n: 1 });
    logger.debug('hidden below level');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'info',
      msg: 'hello',
      pipeline: 'p',
      stage: 's',
      n: 1,
    });
  });

  it('redacts secret-named keys at any depth and registered secret values anywhere', () => {
    const secret = `ghp_${'x'.repeat(20)}${Date.now()}`;
    registerSecret(secret);
    const lines: string[] = [];
    const logger = new ConsoleLogger({ format: 'json', write: (l) => lines.push(l) });
    logger.warn(`request with ${secret} failed`, {
      config: { apiKey: 'k-123456', nested: { password: 'hunter22', user: 'ann' } },
      Authorization: 'Bearer abc',
      url: `https://api.example/?token=${secret}`,
      error: new Error(`401 for ${secret}`),
    });
    const text = lines.join('\n');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('k-123456');
    expect(text).not.toContain('hunter22');
    expect(text).not.toContain('Bearer abc');
    const entry = JSON.parse(lines[0]!);
    expect(entry.config.nested.user).toBe('ann');
    expect(entry.config.apiKey).toBe('[REDACTED]');
    expect(entry.error.message).toBe('401 for [REDACTED]');
  });

  it('pretty format prints one readable line', () => {
    const lines: string[] = [];
    new ConsoleLogger({ format: 'pretty', write: (l) => lines.push(l) }).error('boom', {
      token: 'abcdef',
    });
    expect(lines[0]).toMatch(/ERROR boom token=\[REDACTED\]$/);
  });

  it('redactSecrets leaves the input untouched and handles cycles', () => {
    const input: Record<string, unknown> = { secret: 's3cr3t!', ok: 1 };
    input.self = input;
    const out = redactSecrets(input);
    expect(input.secret).toBe('s3cr3t!');
    expect(out).toMatchObject({ secret: '[REDACTED]', ok: 1, self: '[Circular]' });
    expect(
      redactSecrets({
        at: new Date(0),
        headers: new Map([['authorization', 'Bearer x']]),
        ids: new Set([1]),
      }),
    ).toEqual({
      at: '1970-01-01T00:00:00.000Z',
      headers: { authorization: '[REDACTED]' },
      ids: [1],
    });
    registerSecret('ab'); // too short to be a real secret: ignored rather than redacting every "ab"
    expect(redactText('abc')).toBe('abc');
  });

  it('hides secrets of awkward shapes in every form a URL or JSON gives them', () => {
    const password = `p@ss/w:rd%2 x${Date.now()}`;
    registerSecret(password);
    const url = new URL('redis://127.0.0.1:6390/0');
    url.username = 'ann';
    url.password = password;
    const texts = [
      `raw ${password}`,
      `encoded ${encodeURIComponent(password)}`,
      `in a URL ${url.href}`,
      `in JSON ${JSON.stringify({ p: `"${password}"` })}`,
    ];
    for (const text of texts) {
      const out = redactText(text);
      expect(out, text).not.toContain(password);
      expect(out, text).not.toContain(url.password);
      expect(out, text).toContain('[REDACTED]');
    }
    expect(redactText(url.href)).toBe('redis://ann:[REDACTED]@127.0.0.1:6390/0');
  });

  it('hides the password of any URL in a text, registered or not, and leaves other URLs alone', () => {
    expect(redactText('connect redis://:p@ss/w@db.example:6390/1 failed')).toBe(
      'connect redis://:[REDACTED]@db.example:6390/1 failed',
    );
    expect(redactText('postgres://u:pw@[::1]:5433/x')).toBe('postgres://u:[REDACTED]@[::1]:5433/x');
    for (const plain of [
      'http://127.0.0.1:4873/@codefeedr%2fcore',
      'https://github.com/acme/repo@v1',
      'redis://127.0.0.1:6390',
      'mongodb://user@host:27018/',
    ])
      expect(redactText(plain)).toBe(plain);
    // A URL registered as a whole hides its password wherever it appears alone.
    const whole = `mongodb://app:s3cr%40t-${Date.now()}@127.0.0.1:27018/`;
    registerSecret(whole);
    const password = new URL(whole).password;
    expect(redactText(`auth failed for password ${decodeURIComponent(password)}`)).not.toContain(
      decodeURIComponent(password),
    );
  });

  it('redacts every field of an error, its cause and its details; redactValues keeps key names', () => {
    const secret = `tok-${Date.now()}-secret`;
    registerSecret(secret);
    const cause = Object.assign(new Error(`socket to ${secret}`), { address: secret });
    const error = Object.assign(new Error('outer', { cause }), {
      details: { problems: [{ message: `bad ${secret}` }] },
    });
    const out = JSON.stringify(redactSecrets({ error }));
    expect(out).not.toContain(secret);
    expect(out).toContain('problems');
    const schema = { properties: { password: { type: 'string', description: `e.g. ${secret}` } } };
    expect(redactValues(schema)).toEqual({
      properties: { password: { type: 'string', description: 'e.g. [REDACTED]' } },
    });
  });
});
