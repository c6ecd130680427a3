import { KafkaTopicNotReadyError } from './errors.js';

/**
 * The partition counts of the topics a buffer knows exist. A send to a topic nobody ensured
 * creates it once (with the buffer's default partitions), concurrent sends waiting for the
 * same creation; a failed creation is forgotten so the next send tries again.
 */
export class KnownTopics {
  private readonly counts = new Map<string, Promise<number>>();

  constructor(private readonly create: (topic: string) => Promise<number>) {}

  /** Resolves with `topic`'s partition count once it exists. */
  ready(topic: string): Promise<number> {
    let ready = this.counts.get(topic);
    if (ready === undefined) {
      ready = this.create(topic);
      this.counts.set(topic, ready);
      ready.catch(() => this.counts.delete(topic));
    }
    return ready;
  }

  /** `topic` exists with `partitions` partitions (the buffer just created or checked it). */
  known(topic: string, partitions: number): void {
    this.counts.set(topic, Promise.resolve(partitions));
  }

  forget(topic: string): void {
    this.counts.delete(topic);
  }
}

/**
 * Waits (bounded by `timeoutMs`) until every partition of a new topic has a leader, as
 * `leaders` reads them; the errors a broker answers while a new topic propagates
 * (UNKNOWN_TOPIC_OR_PARTITION) are waited out too. Resolves with the partition count.
 */
export async function untilLeadersElected(
  topic: string,
  timeoutMs: number,
  leaders: () => Promise<readonly number[]>,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const current = await leaders();
      if (current.length > 0 && current.every((leader) => leader >= 0)) return current.length;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new KafkaTopicNotReadyError(topic);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
