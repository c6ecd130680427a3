import { randomBytes } from 'node:crypto';
import {
  StateFencedError,
  type JsonValue,
  type StateShard,
  type StateStore,
} from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';

export interface StateStoreConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /**
   * A store on the backing service. Each call is another worker: the suite makes two to
   * check that one cannot overwrite what the other saved. Pipelines the suite uses are named
   * `conformance-<random>`, so runs on a shared server do not see each other.
   */
  create: () => Promise<StateStore>;
}

/** A shard as the runtime writes one: positions per channel, a chain snapshot as state. */
function shard(version: number, state: JsonValue, partition = 0): StateShard {
  return {
    version,
    takenAt: 1_700_000_000_000 + version,
    positions: { [`in/${partition}`]: String(version * 10) },
    state,
  };
}

/**
 * What every StateStore must do (core's `StateStore` contract): a partition's shard comes
 * back as saved, last save wins, a save must name the version it replaces (else
 * StateFencedError), so a worker that lost a partition cannot overwrite its new owner's
 * state; pipelines, stages and partitions are separate. Run it from a vitest test file.
 */
export function stateStoreConformanceSuite(options: StateStoreConformanceOptions): void {
  const stores: StateStore[] = [];
  const open = async () => {
    const store = await options.create();
    stores.push(store);
    return store;
  };
  const pipeline = () => `conformance-${randomBytes(4).toString('hex')}`;

  describe(`state store conformance: ${options.name}`, () => {
    afterAll(async () => {
      for (const store of stores) await store.close?.();
    });

    it('has nothing for a partition never saved', async () => {
      const store = await open();
      expect(await store.load(pipeline(), 'stage', 0)).toBeUndefined();
    });

    it('returns the last shard saved, exactly as saved', async () => {
      const store = await open();
      const p = pipeline();
      const state = {
        version: 1,
        operators: {
          '3': { kind: 'keyedReduce', state: { state: [['ключ', { n: 1.5, s: 'a"b\n' }]] } },
        },
      };
      await store.save(p, 'stage', 2, shard(1, state, 2));
      await store.save(p, 'stage', 2, shard(2, { ...state, v: 2 }, 2));
      expect(await store.load(p, 'stage', 2)).toEqual(shard(2, { ...state, v: 2 }, 2));
    });

    it('refuses a save that does not follow the stored version (StateFencedError)', async () => {
      const store = await open();
      const p = pipeline();
      await expect(store.save(p, 'stage', 0, shard(2, null))).rejects.toBeInstanceOf(
        StateFencedError,
      );
      await store.save(p, 'stage', 0, shard(1, 'first'));
      await expect(store.save(p, 'stage', 0, shard(1, 'again'))).rejects.toBeInstanceOf(
        StateFencedError,
      );
      expect((await store.load(p, 'stage', 0))?.state).toBe('first');
    });

    it('keeps a worker that lost the partition from overwriting its new owner', async () => {
      const p = pipeline();
      const a = await open();
      const b = await open();
      expect(await a.load(p, 'stage', 1)).toBeUndefined();
      await a.save(p, 'stage', 1, shard(1, 'a1', 1));
      // The partition moves to b, which loads what a saved and goes on from there.
      expect((await b.load(p, 'stage', 1))?.version).toBe(1);
      await b.save(p, 'stage', 1, shard(2, 'b2', 1));
      // a has not noticed yet: its next checkpoint must not replace b's state.
      await expect(a.save(p, 'stage', 1, shard(2, 'a2', 1))).rejects.toBeInstanceOf(
        StateFencedError,
      );
      expect((await a.load(p, 'stage', 1))?.state).toBe('b2');
    });

    it('keeps pipelines, stages and partitions apart', async () => {
      const store = await open();
      const [p, q] = [pipeline(), pipeline()];
      await store.save(p, 'one', 0, shard(1, 'p-one-0'));
      await store.save(p, 'one', 1, shard(1, 'p-one-1', 1));
      await store.save(p, 'two', 0, shard(1, 'p-two-0'));
      await store.save(q, 'one', 0, shard(1, 'q-one-0'));
      expect((await store.load(p, 'one', 0))?.state).toBe('p-one-0');
      expect((await store.load(p, 'one', 1))?.state).toBe('p-one-1');
      expect((await store.load(p, 'two', 0))?.state).toBe('p-two-0');
      expect((await store.load(q, 'one', 0))?.state).toBe('q-one-0');
      expect(await store.load(q, 'two', 0)).toBeUndefined();
    });

    it('round-trips a shard of 100,000 keys', async () => {
      const store = await open();
      const p = pipeline();
      const pairs = Array.from({ length: 100_000 }, (_, i) => [`key-${i}`, i] as [string, number]);
      const state = {
        version: 1,
        operators: { '1': { kind: 'keyedReduce', state: { state: pairs } } },
      };
      await store.save(p, 'stage', 0, shard(1, state));
      expect(await store.load(p, 'stage', 0)).toEqual(shard(1, state));
    });

    it('returns the last whole shard with the deltas saved after it, in order (incremental stores)', async () => {
      const store = await open();
      const p = pipeline();
      if (store.incremental !== true) {
        // The runtime saves only whole shards to such a store, and loads them whole.
        await store.save(p, 'stage', 0, shard(1, 'whole 1'));
        await store.save(p, 'stage', 0, shard(2, 'whole 2'));
        expect(await (await open()).load(p, 'stage', 0)).toEqual(shard(2, 'whole 2'));
        return;
      }
      const delta = (version: number, keys: string[]): StateShard => ({
        ...shard(version, `delta ${version}`),
        changedKeys: keys,
      });
      // Round one: whole 1, deltas 2 and 3; round two: whole 4, deltas 5 and 6.
      await store.save(p, 'stage', 0, shard(1, 'whole 1'));
      await store.save(p, 'stage', 0, delta(2, ['a']));
      await store.save(p, 'stage', 0, delta(3, ['a', 'b']));
      const taker = await open();
      expect(await taker.load(p, 'stage', 0)).toEqual({
        ...shard(1, 'whole 1'),
        deltas: [delta(2, ['a']), delta(3, ['a', 'b'])],
      });
      await taker.save(p, 'stage', 0, shard(4, 'whole 4'));
      expect(await taker.load(p, 'stage', 0)).toEqual(shard(4, 'whole 4'));
      await taker.save(p, 'stage', 0, delta(5, []));
      await taker.save(p, 'stage', 0, delta(6, ['c']));
      expect(await (await open()).load(p, 'stage', 0)).toEqual({
        ...shard(4, 'whole 4'),
        deltas: [delta(5, []), delta(6, ['c'])],
      });
    });
  });
}
