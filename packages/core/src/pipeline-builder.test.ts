import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineInput, defineOutput, defineTransform } from './component.js';
import { Any, defineMessageType, type MessageType } from './message-type.js';
import { PipelineBuilder } from './pipeline-builder.js';
import { PipelineValidationError } from './pipeline-errors.js';
import type { AnyStage, InputStage, OutputStage, TransformStage } from './stage.js';

const Num = defineMessageType('test.Number', 1, z.number());
const Str = defineMessageType('test.String', 1, z.string());

const never = (): never => {
  throw new Error('not run in these tests');
};

function input<T>(id: string, type: MessageType<unknown> = Num) {
  return defineInput({
    name: 'in',
    description: 'test input',
    configSchema: z.object({}),
    outputType: type,
    createSource: never,
  }).create(id) as unknown as InputStage<T>;
}

function transform<In extends readonly unknown[], Out>(
  id: string,
  inputTypes: { readonly [K in keyof In]: MessageType<In[K]> },
  outputType: MessageType<Out>,
): TransformStage<In, Out> {
  return defineTransform({
    name: 'tr',
    description: 'test transform',
    configSchema: z.object({}),
    inputTypes,
    outputType,
    transform: never,
  }).create(id);
}

function output<In extends readonly unknown[]>(
  id: string,
  inputTypes: { readonly [K in keyof In]: MessageType<In[K]> },
): OutputStage<In> {
  return defineOutput({
    name: 'out',
    description: 'test output',
    configSchema: z.object({}),
    inputTypes,
    createSink: never,
  }).create(id);
}

function problemsOf(build: () => unknown): { code: string; message: string }[] {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineValidationError);
    const e = error as PipelineValidationError;
    expect(e.code).toBe('PIPELINE_INVALID');
    return e.problems.map((p) => ({ code: p.code, message: p.message }));
  }
  throw new Error('build() did not throw');
}

const codes = (build: () => unknown) => problemsOf(build).map((p) => p.code);

describe('PipelineBuilder shapes', () => {
  it('append chains stages 1:1 in order', () => {
    const p = new PipelineBuilder('chain')
      .append(input<number>('numbers'))
      .append(transform<[number], string>('show', [Num], Str))
      .append(output<[string]>('print', [Str]))
      .build();
    expect(p.describe().edges).toEqual([
      { from: 'numbers', to: 'show', inputIndex: 0 },
      { from: 'show', to: 'print', inputIndex: 0 },
    ]);
  });

  it('edge() builds 1:N, N:1 and N:N with input order = order of edge calls', () => {
    const a = input<number>('a');
    const b = input<string>('b', Str);
    const join = transform<[string, number], string>('join', [Str, Num], Str);
    const o1 = output<[string]>('o1', [Str]);
    const o2 = output<[unknown]>('o2', [Any]);
    const p = new PipelineBuilder('dag')
      .edge(b, join) // input 0 of join
      .edge(a, join) // input 1 of join
      .edge(join, o1) // 1:N from join
      .edge(join, o2)
      .build();
    const d = p.describe();
    expect(d.edges).toContainEqual({ from: 'b', to: 'join', inputIndex: 0 });
    expect(d.edges).toContainEqual({ from: 'a', to: 'join', inputIndex: 1 });
    expect(d.edges.filter((e) => e.from === 'join').map((e) => e.to)).toEqual(['o1', 'o2']);
  });

  it('addParents sets inputs in the given order and accepts many inputs', () => {
    const sources = Array.from({ length: 12 }, (_, i) => input<number>(`n${i}`));
    const sink = output<number[]>(
      'all',
      sources.map(() => Num),
    );
    const p = new PipelineBuilder('wide').addParents(sink, sources).build();
    expect(p.describe().edges.filter((e) => e.to === 'all')).toEqual(
      sources.map((s, i) => ({ from: s.id, to: 'all', inputIndex: i })),
    );
  });

  it('describe() lists stages in topological order with type ids and components', () => {
    const o = output<[string]>('print', [Str]);
    const t = transform<[number], string>('show', [Num], Str);
    const i = input<number>('numbers');
    // Added sink-first: the order in describe() must still be topological.
    const p = new PipelineBuilder('topo').add(o).add(t).add(i).edge(t, o).edge(i, t).build();
    expect(p.describe()).toEqual({
      name: 'topo',
      stages: [
        {
          id: 'numbers',
          kind: 'input',
          component: 'in',
          inputTypes: [],
          outputType: 'test.Number@1',
        },
        {
          id: 'show',
          kind: 'transform',
          component: 'tr',
          inputTypes: ['test.Number@1'],
          outputType: 'test.String@1',
        },
        {
          id: 'print',
          kind: 'output',
          component: 'out',
          inputTypes: ['test.String@1'],
          outputType: null,
        },
      ],
      edges: [
        { from: 'numbers', to: 'show', inputIndex: 0 },
        { from: 'show', to: 'print', inputIndex: 0 },
      ],
    });
  });
});

describe('pipeline validation', () => {
  it('EMPTY_PIPELINE', () => {
    expect(codes(() => new PipelineBuilder('empty').build())).toEqual(['EMPTY_PIPELINE']);
  });

  it('DUPLICATE_STAGE_ID', () => {
    const b = new PipelineBuilder('dup')
      .append(input<number>('x'))
      .append(output<[number]>('x', [Num]));
    const problems = problemsOf(() => b.build());
    expect(problems.map((p) => p.code)).toContain('DUPLICATE_STAGE_ID');
    expect(problems.find((p) => p.code === 'DUPLICATE_STAGE_ID')!.message).toContain('"x"');
  });

  it('DUPLICATE_EDGE', () => {
    const i = input<number>('i');
    const o = output<[number]>('o', [Num]);
    expect(codes(() => new PipelineBuilder('p').edge(i, o).edge(i, o).build())).toContain(
      'DUPLICATE_EDGE',
    );
  });

  it('CYCLE names the cycle path', () => {
    const i = input<number>('i');
    const t1 = transform<[number, number], number>('t1', [Num, Num], Num);
    const t2 = transform<[number], number>('t2', [Num], Num);
    const o = output<[number]>('o', [Num]);
    const problems = problemsOf(() =>
      new PipelineBuilder('loop').edge(i, t1).edge(t2, t1).edge(t1, t2).edge(t2, o).build(),
    );
    const cycle = problems.find((p) => p.code === 'CYCLE');
    expect(cycle?.message).toMatch(/t1 -> t2 -> t1|t2 -> t1 -> t2/);
  });

  it('RESERVED_STAGE_ID: a stage cannot take the name of a dead-letter topic', () => {
    const b = new PipelineBuilder('reserved')
      .append(input<number>('events'))
      .append(output<[number]>('events.dlq', [Num]));
    const problems = problemsOf(() => b.build());
    expect(problems.map((p) => p.code)).toEqual(['RESERVED_STAGE_ID']);
    expect(problems[0]!.message).toContain('dead-letter topic of stage "events"');
    // The suffix is the configured one.
    const custom = new PipelineBuilder('custom')
      .append(input<number>('events'))
      .append(output<[number]>('events.bad', [Num]))
      .setDeadLetter({ topicSuffix: '.bad' });
    expect(codes(() => custom.build())).toEqual(['RESERVED_STAGE_ID']);
  });

  it('EDGE_INTO_INPUT', () => {
    const a = input<number>('a');
    const b = input<number>('b');
    expect(codes(() => new PipelineBuilder('p').edge(a, b).build())).toContain('EDGE_INTO_INPUT');
  });

  it('EDGE_FROM_OUTPUT', () => {
    const i = input<number>('i');
    const o = output<[number]>('o', [Num]);
    const t = transform<[number], number>('t', [Num], Num);
    const o2 = output<[number]>('o2', [Num]);
    expect(
      codes(() => new PipelineBuilder('p').edge(i, o).edge(o, t).edge(t, o2).build()),
    ).toContain('EDGE_FROM_OUTPUT');
  });

  it('INPUT_COUNT_MISMATCH says declared and actual', () => {
    const i = input<number>('i');
    const join = transform<[number, number], number>('join', [Num, Num], Num);
    const o = output<[number]>('o', [Num]);
    const problems = problemsOf(() => new PipelineBuilder('p').edge(i, join).edge(join, o).build());
    const p = problems.find((x) => x.code === 'INPUT_COUNT_MISMATCH');
    expect(p?.message).toContain('declares 2 inputs but has 1 parent');
  });

  it('TYPE_MISMATCH is checked input by input, so swapped parents are caught', () => {
    const nums = input<number>('nums');
    const strs = input<string>('strs', Str);
    const join = transform<[number, string], string>('join', [Num, Str], Str);
    const o = output<[string]>('o', [Str]);
    // Right order builds.
    expect(() =>
      new PipelineBuilder('ok').edge(nums, join).edge(strs, join).edge(join, o).build(),
    ).not.toThrow();
    // Swapped: both inputs are wrong, although the *set* of types matches.
    const problems = problemsOf(() =>
      new PipelineBuilder('swapped').edge(strs, join).edge(nums, join).edge(join, o).build(),
    );
    expect(problems.filter((p) => p.code === 'TYPE_MISMATCH')).toHaveLength(2);
    expect(problems[0]!.message).toContain('Input 1 of stage "join" expects test.Number@1');
  });

  it('Any accepts every type', () => {
    const i = input<number>('i');
    expect(() =>
      new PipelineBuilder('p').edge(i, output<[unknown]>('o', [Any])).build(),
    ).not.toThrow();
  });

  it('UNKNOWN_STAGE in an edge', () => {
    const i = input<number>('i');
    const o = output<[number]>('o', [Num]);
    const problems = problemsOf(() => new PipelineBuilder('p').edge(i, o).edge('ghost', o).build());
    expect(problems.map((p) => p.code)).toContain('UNKNOWN_STAGE');
    expect(problems.find((p) => p.code === 'UNKNOWN_STAGE')!.message).toContain('"ghost"');
  });

  it('DANGLING_STAGE: not reachable from an input', () => {
    const i = input<number>('i');
    const o = output<[number]>('o', [Num]);
    const t = transform<[number], number>('t', [Num], Num);
    const lonely = output<[number]>('lonely', [Num]);
    const problems = codes(() => new PipelineBuilder('p').edge(i, o).edge(t, lonely).build());
    expect(problems).toContain('DANGLING_STAGE');
  });

  it('reports every problem at once', () => {
    const i = input<number>('i');
    const strOut = output<[string]>('strOut', [Str]);
    const other = input<number>('i'); // duplicate id
    const problems = codes(() =>
      new PipelineBuilder('broken')
        .edge(i, strOut) // TYPE_MISMATCH
        .edge(i, strOut) // DUPLICATE_EDGE
        .add(other)
        .edge('nowhere', strOut) // UNKNOWN_STAGE
        .build(),
    );
    expect(new Set(problems)).toEqual(
      new Set(['DUPLICATE_STAGE_ID', 'DUPLICATE_EDGE', 'UNKNOWN_STAGE', 'TYPE_MISMATCH']),
    );
  });
});

describe('builder types', () => {
  it('rejects append of a stage whose input type does not accept the previous output (compile time)', () => {
    const strs = input<string>('strs', Str);
    const needsNumber = transform<[number], string>('t', [Num], Str);
    const printer = output<[unknown]>('p', [Any]);
    const builder = new PipelineBuilder('types').append(strs);
    // @ts-expect-error a TransformStage<[number], string> cannot follow a stage emitting string
    const wrong = () => builder.append(needsNumber);
    // @ts-expect-error an output of numbers cannot follow a stage emitting string
    const wrongOut = () => builder.append(output<[number]>('o', [Num]));
    expect(typeof wrong).toBe('function');
    expect(typeof wrongOut).toBe('function');
    // Any accepts everything; this compiles and builds.
    const stage: AnyStage = printer;
    expect(
      builder
        .append(printer)
        .build()
        .describe()
        .stages.map((s) => s.id),
    ).toEqual(['strs', stage.id]);
  });
});
