// The entry of one worker thread of a split run (see split-run.ts): builds the pipeline with its
// factory, runs its parallel stages inline on this thread's split, and sends what crosses to the
// main thread through port sinks. Everything else (dead letters, logs, metrics) goes there too.
import { parentPort, workerData } from 'node:worker_threads';
import type { Pipeline } from './pipeline.js';
import type { PipelineFactory } from './pipeline-builder.js';
import { runPipeline } from './runtime.js';
import { planSplits, portSinkId, workerDefinition } from './split-plan.js';
import {
  PortDeadLetters,
  PortLogger,
  PortSink,
  serializeError,
  type FromSplit,
  type ToSplit,
} from './split-ports.js';
import type { SplitWorkerData } from './split-run.js';
import type { OutputStage } from './stage.js';
import { pipelineShape } from './split-run.js';

const port = parentPort!;
const data = workerData as SplitWorkerData;
const send = (message: FromSplit) => port.postMessage(message);

async function buildPipeline(factory: PipelineFactory): Promise<Pipeline> {
  const module = (await import(factory.module)) as Record<string, unknown>;
  const build = module[factory.export];
  if (typeof build !== 'function')
    throw new Error(
      `${factory.module} has no function export "${factory.export}" (the pipeline's factory)`,
    );
  return (await (build as (config: unknown) => Pipeline | Promise<Pipeline>)(
    factory.config,
  )) as Pipeline;
}

async function main(): Promise<void> {
  const pipeline = await buildPipeline(data.factory);
  const def = pipeline.definition;
  if (pipelineShape(def) !== data.shape)
    throw new Error(
      `the factory ${data.factory.module}#${data.factory.export} built a pipeline other than the one being run (its stages or edges differ): it must build the same DAG from its config`,
    );
  const plan = planSplits(def, data.split.count);
  const stop = new AbortController();
  const sinks = new Map<number, PortSink>();
  const workerDef = workerDefinition(def, plan, (p): OutputStage => ({
    kind: 'output',
    id: portSinkId(p),
    inputTypes: [p.type],
    config: {},
    createSink: () => {
      const sink = new PortSink(p.index, p.ref, port, stop.signal);
      sinks.set(p.index, sink);
      return sink;
    },
  }));
  const deadLetters = new PortDeadLetters(data.deadLetters, port);
  port.on('message', (message: ToSplit) => {
    if (message.t === 'ack') sinks.get(message.port)?.acked();
    else if (message.t === 'dead-letters-stored') deadLetters.stored(message.id, message.error);
    else stop.abort();
  });
  const handle = runPipeline(
    workerDef,
    {
      ...data.options,
      mode: 'inline',
      signal: stop.signal,
      logFailure: false,
      logger: new PortLogger(port, { split: data.split.index }),
    },
    () => pipeline.describe(),
    { split: data.split, deadLetters },
  );
  const metrics = setInterval(
    () => send({ t: 'metrics', stages: handle.metrics.snapshot().stages }),
    data.metricsEveryMs,
  );
  try {
    const summary = await handle.done;
    send({ t: 'done', stages: summary.metrics.stages });
  } finally {
    clearInterval(metrics);
  }
}

main()
  .catch((error: unknown) => send({ t: 'failed', error: serializeError(error) }))
  .finally(() => port.unref());
