import { createRequire } from 'node:module';

/*
 * kafkajs 2.2.4 (its last release) arms its throttle check with `throttledUntil - Date.now()`
 * when no request is pending, and `throttledUntil` starts at -1: a delay of minus the epoch.
 * Node clamps it to 1 ms, as it always did, but Node 24 also prints
 * "TimeoutNegativeWarning: -1796596389250 is a negative number" once in every process that
 * talks to Kafka. This clamps the delay the same way before setTimeout sees it, so behaviour is
 * unchanged and the warning goes. A kafkajs internal: patched only if it has the expected shape.
 */

interface RequestQueuePrototype {
  throttledUntil: number;
  pending: unknown[];
  scheduleCheckPendingRequests(this: RequestQueuePrototype): void;
}

let patched = false;

/** Idempotent; called before the first kafkajs client is created. */
export function clampKafkajsThrottleTimer(): void {
  if (patched) return;
  patched = true;
  let RequestQueue: { prototype: RequestQueuePrototype } | undefined;
  try {
    // The copy the plugin imports (kafkajs has no `exports` map, so its files resolve).
    const require = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as {
      prototype: RequestQueuePrototype;
    };
  } catch {
    return; // another kafkajs layout: leave it as it is
  }
  const original = RequestQueue?.prototype?.scheduleCheckPendingRequests;
  if (typeof original !== 'function') return;
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueuePrototype) {
    // Only the case with nothing pending and no throttle ahead passes a negative delay (with
    // requests pending kafkajs falls back to its check interval). For that one call the
    // throttle time reads as 1 ms ahead, so the delay is 0 or 1 ms, the timer Node made of the
    // negative one; restored after, so nothing is held back.
    const until = this.throttledUntil;
    if (this.pending.length > 0 || until > Date.now()) return original.call(this);
    this.throttledUntil = Date.now() + 1;
    try {
      original.call(this);
    } finally {
      this.throttledUntil = until;
    }
  };
}
