import type { CheckpointStore } from './checkpoint-store.js';
import type { Logger } from './logger.js';
import type { JsonValue } from './record.js';

/**
 * When a run unit (the whole DAG inline, or one stage on a buffer) takes its checkpoints, and
 * their ids. Taking one is the unit's business (capture at a batch boundary, flush, record,
 * commit); this only says when, and stores what it is given.
 */
export class CheckpointCoordinator {
  private id = 0;
  private last = Date.now();

  constructor(
    private readonly store: CheckpointStore | undefined,
    private readonly pipeline: string,
    private readonly unit: string,
    private readonly instance: string,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  due(): boolean {
    return Date.now() - this.last >= this.intervalMs;
  }

  /** The checkpoint to resume from, if any. */
  async load() {
    const cp = await this.store?.load(this.pipeline, this.unit, this.instance);
    if (cp !== undefined) {
      this.id = cp.id;
      this.logger.info('restored checkpoint', { unit: this.unit, checkpoint: cp.id });
    }
    return cp;
  }

  async save(
    positions: Record<string, JsonValue>,
    state: Record<string, JsonValue>,
    watermarks: Record<string, number | null>,
  ): Promise<void> {
    this.last = Date.now();
    if (this.store === undefined) return;
    await this.store.save({
      pipeline: this.pipeline,
      unit: this.unit,
      instance: this.instance,
      id: ++this.id,
      takenAt: this.last,
      positions,
      state,
      watermarks,
    });
  }
}
