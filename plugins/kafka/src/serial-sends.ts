/**
 * One producer's sends, one after another: the idempotent producer's per-partition sequence
 * numbers must not interleave (and the runtime awaits each batch anyway). A failed send does
 * not stop the ones after it.
 */
export class SerialSends {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `send` once every send queued before it has settled. */
  run(send: () => Promise<void>): Promise<void> {
    const next = this.tail.then(send);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Resolves once every send queued so far has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}
