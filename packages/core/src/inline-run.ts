import { AsyncMutex } from './async-mutex.js';
import { BroadcastReadAhead } from './broadcast-state.js';
import { CheckpointCoordinator } from './checkpoint-coordinator.js';
import { EventLoopYield } from './event-loop-yield.js';
import { formatOutputRef } from './named-outputs.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { RuntimeContext } from './runtime-context.js';
import { StageTask, type TaskOutput } from './stage-task.js';

/** The in-process edge (Flink's ChainingOutput): the next tasks' `onBatch`, called directly. */
class InProcessOutput implements TaskOutput {
  /** Every edge from this stage; `output` names the named output it reads (none: the main one). */
  readonly children: { task: StageTask; inputIndex: number; output: string | undefined }[] = [];
  constructor(private readonly from: string) {}
  emit(records: readonly StreamRecord[], output?: string): void {
    for (const child of this.children)
      if (child.output === output)
        child.task.onBatch(
          child.inputIndex,
          formatOutputRef({ stage: this.from, output }),
          records,
        );
  }
}

/**
 * Inline mode: every stage's task in this process, joined by in-process edges. A source batch
 * is pushed synchronously through the chains downstream, in topological order; only sink
 * writes and dead-letter sends are awaited. Batches, ticks and checkpoints share one mutex, so
 * a checkpoint sees every chain at a batch boundary: the whole DAG is one checkpoint unit.
 */
export async function runInline(ctx: RuntimeContext): Promise<void> {
  const { def } = ctx;
  const tasks = def.stages.map((stage) => new StageTask(ctx, stage));
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const outputs = new Map(tasks.map((t) => [t.id, new InProcessOutput(t.id)]));
  for (const task of tasks) if (task.stage.kind !== 'output') task.output = outputs.get(task.id);
  // def.edges is in topological order of their targets: children are fed in that order.
  for (const edge of def.edges)
    outputs.get(edge.from)!.children.push({
      task: byId.get(edge.to)!,
      inputIndex: edge.inputIndex,
      output: edge.output,
    });
  const endedParents = new Map(tasks.map((t) => [t.id, 0]));

  const mutex = new AsyncMutex();
  const checkpoints = new CheckpointCoordinator(
    ctx.store,
    def.name,
    'inline',
    ctx.instance,
    ctx.checkpointIntervalMs,
    ctx.logger,
  );
  const opened: StageTask[] = [];

  /** A stage whose inputs all ended fires what it holds and ends its children. */
  const endTask = (task: StageTask): void => {
    task.finish();
    for (const { task: child, inputIndex, output } of outputs.get(task.id)!.children) {
      const ended = endedParents.get(child.id)! + 1;
      endedParents.set(child.id, ended);
      if (ended === def.parents.get(child.id)!.length) endTask(child);
      else releaseChannel(child, inputIndex, formatOutputRef({ stage: task.id, output }));
    }
  };

  /** The input's channels (upstream stage refs), by task and input: see assignChannels below. */
  const channels = new Map<StageTask, Map<number, string[]>>();
  /**
   * An upstream stage that ended stops holding back the watermark of an input it shares with
   * others (a split run's splits), as a finished Flink source split emits the end of time. An
   * input's last channel is kept: its end is the input's end.
   */
  const releaseChannel = (task: StageTask, inputIndex: number, ref: string): void => {
    const list = channels.get(task)?.get(inputIndex);
    const at = list?.indexOf(ref) ?? -1;
    if (list === undefined || at === -1 || list.length === 1) return;
    list.splice(at, 1);
    task.assignChannels(inputIndex, [...list]);
  };

  /** After a batch or tick: sink writes done, dead letters stored. */
  const settle = async (): Promise<void> => {
    for (const task of tasks) await task.writesDone();
    for (const task of tasks) await task.sendDeadLetters();
  };

  const checkpoint = async (): Promise<void> => {
    // Captured synchronously at a batch boundary (we hold the mutex): positions and state agree.
    const positions: Record<string, JsonValue> = {};
    const state: Record<string, JsonValue> = {};
    const watermarks: Record<string, number | null> = {};
    for (const task of tasks) {
      const position = task.position();
      if (position !== undefined) positions[task.id] = position;
      const snapshot = task.snapshotState();
      if (snapshot !== undefined) state[task.id] = snapshot;
      watermarks[task.id] = task.metrics.watermark;
    }
    // Every record read before these positions is written: make it durable, record, commit.
    for (const task of tasks) await task.flush();
    for (const task of tasks) await task.sendDeadLetters();
    await checkpoints.save(positions, state, watermarks);
    for (const task of tasks) {
      const position = positions[task.id];
      if (position !== undefined) await task.commitSource(position);
    }
  };
  const maybeCheckpoint = async () => {
    if (checkpoints.due()) await checkpoint();
  };

  /**
   * Sources upstream of a broadcast input (and of no other input of such a stage) are read
   * ahead of the others by BroadcastReadAhead's rule, as a buffer worker reads its broadcast
   * inputs: `readAhead` resolves once they are all read up.
   */
  let openReadAhead = (): void => {};
  const readAhead = new Promise<void>((resolve) => (openReadAhead = resolve));
  /** Each read-ahead source still being read ahead, and its rule's clock. */
  const readingAhead = new Map<StageTask, BroadcastReadAhead>();
  const noteReadAhead = (task: StageTask, delivered: number, ended: boolean): void => {
    const rule = readingAhead.get(task);
    if (rule === undefined || !rule.done(delivered, ended)) return;
    readingAhead.delete(task);
    if (readingAhead.size === 0) openReadAhead();
  };

  const sourceLoop = async (task: StageTask): Promise<void> => {
    const pacing = new EventLoopYield();
    if (!readingAhead.has(task)) await readAhead;
    try {
      await sourceBatches(task, pacing);
    } finally {
      noteReadAhead(task, 0, true); // failed or stopped: never hold the others back
    }
  };

  const sourceBatches = async (task: StageTask, pacing: EventLoopYield): Promise<void> => {
    while (!ctx.signal.aborted) {
      let batch: StreamRecord[] | null;
      try {
        batch = await task.readBatch();
      } catch (error) {
        if (ctx.signal.aborted && !ctx.failed()) return; // a poll cut short by a stop is not a failure
        throw error;
      }
      noteReadAhead(task, batch?.length ?? 0, batch === null);
      if (batch !== null && batch.length === 0) {
        await mutex.run(maybeCheckpoint);
        continue;
      }
      await mutex.run(async () => {
        const started = performance.now();
        if (batch === null) endTask(task);
        else task.onSourceBatch(batch);
        await settle();
        if (batch !== null) task.metrics.observeBatch(performance.now() - started);
        await maybeCheckpoint();
      });
      if (batch === null) return;
      await pacing.maybeYield();
    }
  };

  try {
    for (const task of tasks) {
      await task.open();
      opened.push(task);
    }
    const restored = await checkpoints.load();
    if (restored !== undefined) {
      for (const task of tasks)
        await task.restore(restored.positions[task.id], restored.state[task.id]);
    }
    // An input's channels are its upstream stages (one, or a split run's one per split): each
    // counts for event time (and its idle timer runs) from now, even if it never delivers.
    for (const edge of def.edges) {
      const task = byId.get(edge.to)!;
      const inputs = channels.get(task) ?? new Map<number, string[]>();
      channels.set(task, inputs);
      const list = inputs.get(edge.inputIndex) ?? [];
      inputs.set(edge.inputIndex, list);
      list.push(formatOutputRef({ stage: edge.from, output: edge.output }));
    }
    for (const [task, inputs] of channels)
      for (const [inputIndex, list] of inputs) task.assignChannels(inputIndex, [...list]);

    for (const task of broadcastSources(ctx, byId))
      readingAhead.set(task, new BroadcastReadAhead());
    if (readingAhead.size === 0) openReadAhead();

    // Processing-time ticks: idle inputs stop holding watermarks back; timers and windows fire.
    const transforms = tasks.filter((t) => t.chain !== undefined);
    let ticking = false;
    const ticker =
      transforms.length === 0
        ? undefined
        : setInterval(() => {
            if (ticking || ctx.signal.aborted) return;
            ticking = true;
            void mutex
              .run(async () => {
                const now = ctx.clock();
                for (const task of transforms) task.onTick(now);
                await settle();
              })
              .catch((error: unknown) => ctx.fail(error))
              .finally(() => {
                ticking = false;
              });
          }, ctx.tickIntervalMs);

    try {
      await Promise.all(
        tasks
          .filter((t) => t.source !== undefined)
          .map((t) => sourceLoop(t).catch((error: unknown) => ctx.fail(error))),
      );
    } finally {
      if (ticker !== undefined) clearInterval(ticker);
    }
    // Finished or stopped: drain in-flight work, flush sinks, record and commit. Not after a
    // failure: then nothing more is committed and a restart resumes from the last good checkpoint.
    await mutex.run(async () => {
      if (!ctx.failed()) await checkpoint();
    });
  } finally {
    for (const task of opened.reverse()) await task.close();
  }
}

/**
 * The input stages upstream of a broadcast input (OperatorChain.broadcastInputs) and of no
 * other input of a stage with broadcast inputs: those read ahead.
 */
function broadcastSources(
  ctx: RuntimeContext,
  byId: ReadonlyMap<string, StageTask>,
): Set<StageTask> {
  const upstream = (id: string, into: Set<string>): Set<string> => {
    if (into.has(id)) return into;
    into.add(id);
    for (const parent of ctx.def.parents.get(id) ?? []) upstream(parent, into);
    return into;
  };
  const broadcast = new Set<string>();
  const other = new Set<string>();
  for (const edge of ctx.def.edges) {
    const inputs = byId.get(edge.to)!.chain?.broadcastInputs ?? [];
    if (inputs.length === 0) continue;
    upstream(edge.from, inputs.includes(edge.inputIndex) ? broadcast : other);
  }
  const sources = new Set<StageTask>();
  for (const id of broadcast) {
    const task = byId.get(id)!;
    if (task.stage.kind === 'input' && !other.has(id)) sources.add(task);
  }
  return sources;
}
