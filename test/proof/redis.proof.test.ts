// Proves the harness's Redis serves streams and consumer groups through ioredis (the
// Redis plugin's client): XADD, XGROUP CREATE, XREADGROUP, XACK, and XPENDING back to 0.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { requireEnv, runId } from './env.ts';

const ENTRIES = 100;

describe('Redis streams (ioredis)', () => {
  const redis = new Redis(requireEnv('CODEFEEDR_REDIS_URL'));
  const stream = `proof:stream:${runId()}`;
  const group = 'proof-group';

  afterAll(async () => {
    await redis.del(stream);
    await redis.quit();
  });

  it('delivers entries to a consumer group and clears the pending list on XACK', async () => {
    const ids: string[] = [];
    for (let i = 0; i < ENTRIES; i++) {
      const id = await redis.xadd(stream, '*', 'seq', String(i));
      if (id === null) throw new Error('XADD returned no id');
      ids.push(id);
    }
    expect(await redis.xlen(stream)).toBe(ENTRIES);
    expect(await redis.xgroup('CREATE', stream, group, '0')).toBe('OK');

    const reply = (await redis.xreadgroup(
      'GROUP',
      group,
      'consumer-1',
      'COUNT',
      ENTRIES * 2,
      'STREAMS',
      stream,
      '>',
    )) as [string, [string, string[]][]][] | null;
    const entries = reply?.[0]?.[1] ?? [];
    expect(entries.map(([id]) => id)).toEqual(ids);
    expect(entries.map(([, fields]) => fields[1])).toEqual(ids.map((_, i) => String(i)));

    const pendingBefore = (await redis.xpending(stream, group)) as [
      number,
      string | null,
      string | null,
      unknown,
    ];
    expect(pendingBefore[0]).toBe(ENTRIES);

    expect(await redis.xack(stream, group, ...ids)).toBe(ENTRIES);
    const pendingAfter = (await redis.xpending(stream, group)) as [
      number,
      string | null,
      string | null,
      unknown,
    ];
    expect(pendingAfter[0]).toBe(0);
  });
});
