import type { BufferMessage, ConsumedMessage, TopicPartitionOffset } from './buffer.js';
import { CONTROL_HEADER, END_HEADER } from './reserved-headers.js';

/**
 * End-of-stream through a buffer: when a stage's inputs have all ended it sends one control
 * message to EVERY partition of its output topic, with header `codefeedr-control: end` and
 * `codefeedr-end: {"stage","covered":[...],"total":N}` where `covered` lists the upstream
 * channels this worker finished (`source` for an input stage, `topic/partition` for others)
 * out of `total`. A consumer deems a partition ended once the union of `covered` over the
 * markers read there reaches `total`, so N workers of one stage (each finishing only its own
 * partitions) end downstream exactly when all of them are done. Consumers never commit past
 * the first end marker of a partition, so whoever owns the partition after a rebalance or
 * restart reads it again.
 */

interface EndMarker {
  stage: string;
  covered: string[];
  total: number;
  /** Id of the run that sent it; a `local` run ignores markers left by earlier runs. */
  run?: string;
}

interface PartitionEnd {
  covered: Set<string>;
  total: number;
  /** Offset of the first end marker read: commits never go past it. */
  firstMarker: string;
}

export const channelOf = (topic: string, partition: number): string => `${topic}/${partition}`;

/** The end markers a stage sends to each of `partitions` partitions of its topic. */
export function endMarkers(
  stage: string,
  covered: readonly string[],
  total: number,
  partitions: number,
  runId: string,
): BufferMessage[] {
  const marker: EndMarker = { stage, covered: [...covered], total, run: runId };
  const headers = { [CONTROL_HEADER]: 'end', [END_HEADER]: JSON.stringify(marker) };
  const messages: BufferMessage[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    messages.push({ value: new Uint8Array(0), timestamp: Date.now(), partition, headers });
  }
  return messages;
}

/** What a consuming stage knows about the end of each input channel (topic/partition). */
export class EndOfStreamTracker {
  private readonly ends = new Map<string, PartitionEnd>();

  /**
   * @param runId this run's id
   * @param ownsEveryStage true in `local` mode: a marker from another run is a leftover of an
   *   earlier run on a persistent buffer, and the data after it belongs to this run.
   */
  constructor(
    private readonly runId: string,
    private readonly ownsEveryStage: boolean,
  ) {}

  /** True for control messages (consumed here, never data). */
  isControl(m: ConsumedMessage): boolean {
    return m.headers?.[CONTROL_HEADER] !== undefined;
  }

  /** Reads one control message. */
  control(channel: string, m: ConsumedMessage): void {
    if (m.headers?.[CONTROL_HEADER] !== 'end') return;
    let marker: EndMarker;
    try {
      marker = JSON.parse(m.headers[END_HEADER] ?? '') as EndMarker;
    } catch {
      marker = { stage: '?', covered: ['?'], total: 1 };
    }
    if (this.ownsEveryStage && marker.run !== this.runId) return;
    let end = this.ends.get(channel);
    if (end === undefined) {
      end = { covered: new Set(), total: marker.total, firstMarker: m.offset };
      this.ends.set(channel, end);
    }
    for (const c of marker.covered) end.covered.add(c);
  }

  /** Data after a partition fully ended: the upstream was restarted (a new run), so that end is void. */
  onData(channel: string): void {
    if (this.ends.size > 0 && this.isEnded(channel)) this.ends.delete(channel);
  }

  isEnded(channel: string): boolean {
    const end = this.ends.get(channel);
    return end !== undefined && end.covered.size >= end.total;
  }

  /** Every channel that fully ended, sorted (what this stage's own end marker covers). */
  endedChannels(): string[] {
    return [...this.ends.keys()].filter((c) => this.isEnded(c)).sort();
  }

  /** Positions clamped so a commit never goes past the first end marker of a partition. */
  clamp(positions: readonly TopicPartitionOffset[]): TopicPartitionOffset[] {
    return positions.map((p) => {
      const end = this.ends.get(channelOf(p.topic, p.partition));
      return end === undefined ? p : { ...p, offset: end.firstMarker };
    });
  }
}
