import type { BufferMessage, BufferProducer } from './buffer.js';
import type { Checkpoint } from './checkpoint-store.js';
import type { DeadLetterQueue } from './dead-letter.js';
import type { StageMetrics } from './metrics.js';
import type { OperatorChain } from './operator-chain.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { RuntimeContext } from './runtime.js';
import {
  AsyncMutex,
  dropBadSourceRecords,
  InputValidator,
  withRetries,
} from './runtime-support.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import type { AnyStage } from './stage.js';

interface Node {
  stage: AnyStage;
  metrics: StageMetrics;
  dlq: DeadLetterQueue;
  validator: InputValidator;
  children: { to: string; inputIndex: number }[];
  parents: number;
  endedParents: number;
  ended: boolean;
  source?: Source<unknown>;
  chain?: OperatorChain;
  sink?: Sink<unknown>;
  /** Writes to one sink are serialized (several parents may feed it in one pass). */
  sinkTail?: Promise<void>;
}

const INLINE_UNIT = 'inline';

/**
 * Inline mode: the whole DAG in this process. Each source batch is pushed synchronously
 * through the fused operator chains downstream, in topological order; only sink writes
 * (and dead-letter sends) are awaited. Batches, ticks and checkpoints share one mutex, so a
 * checkpoint sees every chain at a batch boundary: the whole DAG is one checkpoint unit.
 */
export async function runInline(ctx: RuntimeContext): Promise<void> {
  const { def } = ctx;
  const nodes = new Map<string, Node>();
  for (const stage of def.stages) {
    nodes.set(stage.id, {
      stage,
      metrics: ctx.metrics.stage(stage.id, stage.kind),
      dlq: ctx.deadLetterQueue(stage),
      validator: new InputValidator(stage.inputTypes, ctx.stageOptions(stage.id)),
      children: [],
      parents: def.parents.get(stage.id)?.length ?? 0,
      endedParents: 0,
      ended: false,
    });
  }
  // def.edges is in topological order of their targets: children are fed in that order.
  for (const edge of def.edges)
    nodes.get(edge.from)!.children.push({ to: edge.to, inputIndex: edge.inputIndex });

  const mutex = new AsyncMutex();
  const retry = ctx.retryPolicy();
  let dlqProducer: BufferProducer | undefined;
  const ensuredDlqTopics = new Set<string>();
  let checkpointId = 0;
  const opened: Node[] = [];

  const closeAll = async () => {
    for (const node of opened.reverse()) {
      try {
        await node.source?.close();
        await node.sink?.close();
      } catch (error) {
        ctx.logger.warn('close failed', { stage: node.stage.id, error });
      }
    }
    await dlqProducer?.close();
  };

  try {
    for (const node of nodes.values()) {
      const sctx = ctx.stageContext(node.stage);
      if (node.stage.kind === 'input') node.source = await node.stage.createSource(sctx);
      else if (node.stage.kind === 'transform') {
        node.chain = ctx.compile(node.stage, sctx, {
          deadLetter: node.dlq.sink,
          retries: def.deadLetter.retries,
        });
      } else node.sink = await node.stage.createSink(sctx);
      opened.push(node);
    }

    const restored = await ctx.store?.load(def.name, INLINE_UNIT, ctx.instance);
    if (restored !== undefined) {
      checkpointId = restored.id;
      for (const node of nodes.values()) {
        const position = restored.positions[node.stage.id];
        if (node.source !== undefined && position !== undefined)
          await node.source.restore(position);
        const state = restored.state[node.stage.id];
        if (node.chain !== undefined && state !== undefined) node.chain.restoreState(state);
      }
      ctx.logger.info('restored inline checkpoint', { checkpoint: restored.id });
    }

    const writeSink = (node: Node, records: readonly StreamRecord[]): Promise<void> => {
      const started = performance.now();
      const previous = node.sinkTail ?? Promise.resolve();
      const next = previous.then(async () => {
        await withRetries(node.stage.id, 'sink.write', retry, node.metrics, () =>
          node.sink!.write(records),
        );
        node.metrics.recordsOut += records.length;
        node.metrics.observeWritten(records);
        const ms = performance.now() - started;
        node.metrics.observeBatch(ms);
        node.metrics.backpressureMs += ms;
      });
      node.sinkTail = next;
      return next;
    };

    /** Synchronous fan-out of one batch from `fromId` to every child, depth first in edge order. */
    const deliver = (
      fromId: string,
      records: readonly StreamRecord[],
      writes: Promise<void>[],
    ): void => {
      if (records.length === 0) return;
      for (const { to, inputIndex } of nodes.get(fromId)!.children) {
        const child = nodes.get(to)!;
        const input = child.validator.filter(records, inputIndex, child.dlq);
        child.metrics.recordsIn += input.length;
        if (input.length === 0) continue;
        if (child.chain !== undefined) {
          const started = performance.now();
          const out = child.chain.processBatch(inputIndex, fromId, input);
          child.metrics.observeBatch(performance.now() - started);
          child.metrics.recordsOut += out.length;
          updateWatermark(child);
          deliver(to, out, writes);
        } else if (child.sink !== undefined) {
          writes.push(writeSink(child, input));
        }
      }
    };

    const sendDeadLetters = async () => {
      for (const node of nodes.values()) {
        if (node.dlq.size === 0) continue;
        const letters: BufferMessage[] = node.dlq.drain();
        dlqProducer ??= await ctx.buffer.producer({ clientId: `${def.name}.inline.dlq` });
        if (!ensuredDlqTopics.has(node.dlq.topic)) {
          // Buffers without topic auto-creation (Kafka's default off in production) need it made.
          await ctx.buffer.admin.ensureTopic({ name: node.dlq.topic, partitions: 1 });
          ensuredDlqTopics.add(node.dlq.topic);
        }
        await withRetries(node.stage.id, 'dead-letter send', retry, node.metrics, () =>
          dlqProducer!.send(node.dlq.topic, letters),
        );
      }
    };

    /** A stage whose inputs all ended finishes its chain (fires pending windows) and ends its children. */
    const endStage = (id: string, writes: Promise<void>[]): void => {
      const node = nodes.get(id)!;
      node.ended = true;
      if (node.chain !== undefined) {
        const out = node.chain.finish();
        node.metrics.recordsOut += out.length;
        updateWatermark(node);
        deliver(id, out, writes);
      }
      for (const { to } of node.children) {
        const child = nodes.get(to)!;
        child.endedParents++;
        if (child.endedParents === child.parents) endStage(to, writes);
      }
    };

    const checkpoint = async () => {
      // Captured synchronously at a batch boundary (we hold the mutex): positions and state agree.
      const positions: Record<string, JsonValue> = {};
      const state: Record<string, JsonValue> = {};
      const watermarks: Record<string, number | null> = {};
      for (const node of nodes.values()) {
        if (node.source !== undefined) positions[node.stage.id] = node.source.position();
        if (node.chain !== undefined) state[node.stage.id] = node.chain.snapshotState();
        watermarks[node.stage.id] = node.metrics.watermark;
      }
      // Every record read before these positions is written; make it durable, then record, then commit.
      for (const node of nodes.values()) {
        if (node.sink === undefined) continue;
        await node.sinkTail;
        const started = performance.now();
        await withRetries(node.stage.id, 'sink.flush', retry, node.metrics, () =>
          node.sink!.flush(),
        );
        node.metrics.backpressureMs += performance.now() - started;
      }
      await sendDeadLetters();
      if (ctx.store !== undefined) {
        const cp: Checkpoint = {
          pipeline: def.name,
          unit: INLINE_UNIT,
          instance: ctx.instance,
          id: ++checkpointId,
          takenAt: Date.now(),
          positions,
          state,
          watermarks,
        };
        await ctx.store.save(cp);
      }
      for (const node of nodes.values()) {
        const source = node.source;
        if (source?.commit === undefined) continue;
        await withRetries(node.stage.id, 'source.commit', retry, node.metrics, () =>
          source.commit!(positions[node.stage.id]!),
        );
      }
    };

    let lastCheckpoint = Date.now();
    const maybeCheckpoint = async () => {
      if (Date.now() - lastCheckpoint < ctx.checkpointIntervalMs) return;
      lastCheckpoint = Date.now();
      await checkpoint();
    };

    const processSourceBatch = async (node: Node, batch: StreamRecord[] | null) => {
      const writes: Promise<void>[] = [];
      if (batch === null) {
        endStage(node.stage.id, writes);
      } else {
        const started = performance.now();
        const good = dropBadSourceRecords(batch, node.dlq);
        node.metrics.recordsIn += batch.length;
        node.metrics.recordsOut += good.length;
        deliver(node.stage.id, good, writes);
        node.metrics.observeBatch(performance.now() - started);
      }
      await Promise.all(writes);
      await sendDeadLetters();
      await maybeCheckpoint();
    };

    const sourceLoop = async (node: Node) => {
      const source = node.source!;
      while (!ctx.signal.aborted) {
        let batch: StreamRecord[] | null;
        try {
          batch = (await withRetries(node.stage.id, 'source.poll', retry, node.metrics, () =>
            source.poll(ctx.batchSize, ctx.signal),
          )) as StreamRecord[] | null;
        } catch (error) {
          if (ctx.signal.aborted && !ctx.failed()) return; // a poll cut short by a stop is not a failure
          throw error;
        }
        if (batch !== null && batch.length === 0) {
          await mutex.run(maybeCheckpoint);
          continue;
        }
        await mutex.run(() => processSourceBatch(node, batch));
        if (batch === null) return;
      }
    };

    // Processing-time ticks: idle inputs stop holding watermarks back; timers and windows fire.
    const transforms = [...nodes.values()].filter((n) => n.chain !== undefined);
    let ticking = false;
    const ticker =
      transforms.length === 0
        ? undefined
        : setInterval(() => {
            if (ticking || ctx.signal.aborted) return;
            ticking = true;
            void mutex
              .run(async () => {
                const writes: Promise<void>[] = [];
                const now = Date.now();
                for (const node of transforms) {
                  if (node.ended) continue;
                  const out = node.chain!.tick(now);
                  node.metrics.recordsOut += out.length;
                  updateWatermark(node);
                  deliver(node.stage.id, out, writes);
                }
                await Promise.all(writes);
                await sendDeadLetters();
              })
              .catch((error: unknown) => ctx.fail(error))
              .finally(() => {
                ticking = false;
              });
          }, ctx.tickIntervalMs);

    try {
      const loops = [...nodes.values()]
        .filter((n) => n.source !== undefined)
        .map((n) =>
          sourceLoop(n).catch((error: unknown) => {
            ctx.fail(error);
          }),
        );
      await Promise.all(loops);
    } finally {
      if (ticker !== undefined) clearInterval(ticker);
    }
    // Finished or stopped: drain in-flight work, flush sinks, record and commit. Not after a failure:
    // then nothing more is committed and a restart resumes from the last good checkpoint.
    await mutex.run(async () => {
      if (!ctx.failed()) await checkpoint();
    });
  } finally {
    await closeAll();
  }
}

function updateWatermark(node: Node): void {
  const wm = node.chain?.currentWatermark?.();
  if (wm !== undefined && Number.isFinite(wm)) node.metrics.watermark = wm;
}
