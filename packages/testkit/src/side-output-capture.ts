import {
  DataflowGraphError,
  type DataStream,
  type DataStreams,
  type OutputTag,
  type TransformOutputs,
  type TransformStage,
} from '@codefeedr/core';

/** What a stage with captured side outputs emits: `[0, value]` main output, `[k, value]` tag k-1. */
export type TaggedValue = readonly [number, unknown];

/**
 * A copy of `stage` whose output also carries what its process and window streams emit to
 * `tags`, each value tagged with where it came from. A stage's DataStream graph has one
 * output, so side outputs only reach a chain when the transform consumes them; the harness
 * needs them without changing the user's graph. It records which stream came from which
 * (every DataStream call, through a Proxy), then attaches `getSideOutput(tag)` to the
 * streams the output derives from. Only nodes are added after the user's, so operator ids
 * (and state snapshots) stay those of the stage run for real. Public API only: core's graph
 * is internal (a core `OperatorChain.sideOutputs` would make this unnecessary).
 */
export function captureSideOutputs<In extends readonly unknown[], Out>(
  stage: TransformStage<In, Out>,
  tags: readonly OutputTag<unknown>[],
): TransformStage<In, TaggedValue> {
  return {
    ...stage,
    transform(inputs, ctx) {
      const lineage = new Lineage();
      const wrapped = inputs.map((input: object) => lineage.wrap(input, []));
      const result = stage.transform(wrapped as unknown as DataStreams<In>, ctx);
      // A stage with named outputs returns { main, <name>: stream }: only main is tagged.
      const named =
        typeof (result as { map?: unknown }).map === 'function'
          ? undefined
          : (result as TransformOutputs<Out>);
      const output = lineage.unwrap(
        named === undefined ? result : named.main,
      ) as DataStream<unknown>;
      const tagged: DataStream<TaggedValue>[] = [];
      for (const stream of lineage.ancestorsOf(output)) {
        const candidate = stream as Partial<DataStream<unknown>>;
        if (typeof candidate.getSideOutput !== 'function') continue;
        tags.forEach((tag, k) => {
          let side: DataStream<unknown>;
          try {
            side = candidate.getSideOutput!(tag);
          } catch (error) {
            // map, filter, ... streams have no side outputs: only process and window streams do.
            if (error instanceof DataflowGraphError) return;
            throw error;
          }
          tagged.push(side.map((value): TaggedValue => [k + 1, value]));
        });
      }
      const main = output.map((value): TaggedValue => [0, value]);
      const combined = tagged.length === 0 ? main : main.union(...tagged);
      if (named === undefined) return combined;
      const outputs: Record<string, unknown> = { main: combined };
      for (const [name, stream] of Object.entries(named))
        if (name !== 'main') outputs[name] = lineage.unwrap(stream);
      return outputs as TransformOutputs<TaggedValue>;
    },
  } as TransformStage<In, TaggedValue>;
}

/** Parents of every stream made by DataStream calls on wrapped streams. */
class Lineage {
  private readonly parents = new WeakMap<object, object[]>();
  private readonly targets = new WeakMap<object, object>();

  wrap(target: object, parents: object[]): object {
    this.parents.set(target, parents);
    const proxy: object = new Proxy(target, {
      get: (t, property) => {
        const member = Reflect.get(t, property, t) as unknown;
        if (typeof member !== 'function') return member;
        return (...args: unknown[]) => {
          const plain = args.map((a) => this.unwrap(a));
          const result = (member as (...a: unknown[]) => unknown).apply(t, plain);
          if (result === t) return proxy; // fluent setters (countTrigger, ...) stay tracked
          if (result === null || typeof result !== 'object') return result;
          const from = [t, ...plain.filter((a): a is object => this.parents.has(a as object))];
          return this.wrap(result, from);
        };
      },
    });
    this.targets.set(proxy, target);
    return proxy;
  }

  unwrap<T>(value: T): T {
    return (
      typeof value === 'object' && value !== null ? (this.targets.get(value) ?? value) : value
    ) as T;
  }

  /** `stream` and everything it derives from. */
  ancestorsOf(stream: object): object[] {
    const seen = new Set<object>([stream]);
    const stack = [stream];
    while (stack.length > 0) {
      for (const parent of this.parents.get(stack.pop()!) ?? []) {
        if (!seen.has(parent)) {
          seen.add(parent);
          stack.push(parent);
        }
      }
    }
    return [...seen];
  }
}
