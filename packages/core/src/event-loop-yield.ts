/**
 * Lets timers, signals and I/O callbacks run during a loop that might never await real I/O
 * (an unbounded sequence into a printer): a setImmediate turn at most every `everyMs`, so
 * SIGINT/SIGTERM are handled within that bound at no per-batch cost.
 */
export class EventLoopYield {
  private last = performance.now();
  constructor(private readonly everyMs = 20) {}

  /** Resolves at once unless `everyMs` passed since the last turn given to the event loop. */
  maybeYield(): Promise<void> | undefined {
    const now = performance.now();
    if (now - this.last < this.everyMs) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.last = performance.now();
        resolve();
      }),
    );
  }
}
