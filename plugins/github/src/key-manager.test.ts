import { describe, expect, it } from 'vitest';
import { StaticKeyManager, isKeyManager } from './key-manager.js';

describe('StaticKeyManager', () => {
  it('sticks to one token until it is exhausted, then rotates; a reset token is usable again', async () => {
    let now = 1_000_000;
    const keys = new StaticKeyManager(['a', 'b', 'a'], () => now);
    expect(keys.size).toBe(2);
    expect(await keys.acquire('github')).toEqual({ key: 'a' });
    expect(await keys.acquire('github')).toEqual({ key: 'a' });
    keys.reportRateLimit('github', 'a', { remaining: 0, resetAt: now + 60_000 });
    expect(await keys.acquire('github')).toEqual({ key: 'b' });
    keys.reportRateLimit('github', 'b', { remaining: 1, resetAt: now + 30_000 });
    expect(await keys.acquire('github')).toEqual({ key: 'b' });
    // b's last request is spent locally; a is still exhausted: nothing left until a reset.
    expect(await keys.acquire('github')).toBeUndefined();
    // The earliest refill among the exhausted tokens is b's.
    expect(keys.nextResetAt()).toBe(now + 30_000);
    now += 30_000;
    expect(await keys.acquire('github')).toEqual({ key: 'b' });
  });

  it('asks for `calls` requests at once', async () => {
    const keys = new StaticKeyManager(['a', 'b'], () => 0);
    keys.reportRateLimit('github', 'a', { remaining: 2, resetAt: 10 });
    expect(await keys.acquire('github', 3)).toEqual({ key: 'b' });
  });

  it('is recognised as a key manager', () => {
    expect(isKeyManager(new StaticKeyManager(['a']))).toBe(true);
    expect(isKeyManager({ acquire: 1 })).toBe(false);
  });
});
