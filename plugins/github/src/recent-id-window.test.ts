import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecentIdWindow, compareEventIds } from './recent-id-window.js';

describe('RecentIdWindow', () => {
  it('remembers exactly the last `capacity` distinct ids (property, against a plain array)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 200 }),
        (capacity, stream) => {
          const window = new RecentIdWindow(capacity);
          const reference: string[] = [];
          for (const n of stream) {
            const id = String(n);
            window.add(id);
            if (!reference.includes(id)) {
              reference.push(id);
              if (reference.length > capacity) reference.shift();
            }
          }
          expect(window.ids()).toEqual(reference);
          for (let n = 0; n <= 40; n++)
            expect(window.has(String(n))).toBe(reference.includes(String(n)));
          expect(RecentIdWindow.from(window.ids(), capacity).ids()).toEqual(reference);
        },
      ),
    );
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RecentIdWindow(0)).toThrow(RangeError);
  });
});

describe('compareEventIds', () => {
  it('orders digit-string ids as numbers (property, against BigInt)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        (a, b) => {
          const expected = a < b ? -1 : a > b ? 1 : 0;
          expect(Math.sign(compareEventIds(String(a), String(b)))).toBe(expected);
        },
      ),
    );
  });
});
