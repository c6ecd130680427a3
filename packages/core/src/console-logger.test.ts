import { describe, expect, it } from 'vitest';
import { ConsoleLogger, redactSecrets, redactText, registerSecret } from './console-logger.js';

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
});
