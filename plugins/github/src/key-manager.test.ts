import { describe, expect, it } from 'vitest';
import { isKeyManager } from '@codefeedr/core';
import { StaticKeyManager } from './key-manager.js';

describe('StaticKeyManager', () => {
  it('sticks to one token until it is exhausted, then rotates; a reset token is usable again', async () => {
    let now = 1_000_000;
    const keys = new StaticKeyManager(['a', 'b', 'a'], () => now);
    expect(keys.size).toBe(2);
    expect((await keys.acquire('github'))?.key).toBe('a');
    expect((await keys.acquire('github'))?.key).toBe('a');
    keys.reportRateLimit('github', 'a', { remaining: 0, resetAt: now + 60_000 });
    expect((await keys.acquire('github'))?.key).toBe('b');
    keys.reportRateLimit('github', 'b', { remaining: 1, resetAt: now + 30_000 });
    expect((await keys.acquire('github'))?.key).toBe('b');
    // b's last request is spent locally; a is still exhausted: nothing left until a reset.
    expect(await keys.acquire('github')).toBeUndefined();
    // The earliest refill among the exhausted tokens is b's.
    expect(keys.nextResetAt()).toBe(now + 30_000);
    now += 30_000;
    expect((await keys.acquire('github'))?.key).toBe('b');
  });

  it('asks for `calls` requests at once', async () => {
    const keys = new StaticKeyManager(['a', 'b'], () => 0);
    keys.reportRateLimit('github', 'a', { remaining: 2, resetAt: 10 });
    expect((await keys.acquire('github', 3))?.key).toBe('b');
  });

  it("answers with core's AcquiredKey: an id that is not the secret, calls left, refresh time", async () => {
    const keys = new StaticKeyManager(['ghp_secret'], () => 0);
    keys.reportRateLimit('github', 'ghp_secret', { remaining: 10, resetAt: 5_000 });
    const lease = await keys.acquire('github', 4);
    expect(lease).toMatchObject({ key: 'ghp_secret', remainingCalls: 6, refreshAt: 5_000 });
    expect(lease!.id).toMatch(/^[0-9a-f]{12}$/);
    expect(lease!.id).not.toContain('secret');
  });

  it('is recognised as a key manager', () => {
    expect(isKeyManager(new StaticKeyManager(['a']))).toBe(true);
    expect(isKeyManager({ acquire: 1 })).toBe(false);
  });
});
