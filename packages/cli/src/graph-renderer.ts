import { formatOutputRef, parseOutputRef, type PipelineDescription } from '@codefeedr/core';
import type { ResolvedPipeline } from '@codefeedr/registry';

export type GraphFormat = 'text' | 'mermaid' | 'dot';

export interface GraphModel {
  name: string;
  stages: {
    id: string;
    kind: string;
    component: string;
    inputTypes: string[];
    outputType: string | null;
  }[];
  /** `output`: the named output of `from` the edge reads (none: its main output). */
  edges: {
    from: string;
    output?: string;
    to: string;
    inputIndex: number;
    type: string | null;
  }[];
}

/** The type id of a parent's main output, or of its named output `output`. */
function typeOfOutput(
  parent: { outputType?: string | null; outputs?: Record<string, string> } | undefined,
  output: string | undefined,
): string | null {
  return (output === undefined ? parent?.outputType : parent?.outputs?.[output]) ?? null;
}

/** The pipeline DAG as data, from manifests alone (no plugin code imported). */
export function graphModel(pipeline: ResolvedPipeline): GraphModel {
  const byId = new Map(pipeline.stages.map((s) => [s.id, s]));
  return {
    name: pipeline.name,
    stages: pipeline.stages.map((s) => ({
      id: s.id,
      kind: s.component.kind,
      component: s.component.id,
      inputTypes: [...(s.component.inputTypes ?? [])],
      outputType: s.component.outputType ?? null,
    })),
    edges: pipeline.stages.flatMap((s) =>
      s.from.map((ref, inputIndex) => {
        const { stage: from, output } = parseOutputRef(ref);
        const parent = byId.get(from)?.component;
        return {
          from,
          ...(output === undefined ? {} : { output }),
          to: s.id,
          inputIndex,
          type: typeOfOutput(parent, output),
        };
      }),
    ),
  };
}

/** The DAG of a built pipeline (a prebuilt one: its stages come from code, not a file). */
export function graphModelOfDescription(description: PipelineDescription): GraphModel {
  const byId = new Map(description.stages.map((s) => [s.id, s]));
  return {
    name: description.name,
    stages: description.stages.map((s) => ({
      id: s.id,
      kind: s.kind,
      component: s.component ?? '(code)',
      inputTypes: [...s.inputTypes],
      outputType: s.outputType,
    })),
    edges: description.edges.map((e) => {
      const parent = byId.get(e.from);
      return {
        from: e.from,
        ...(e.output === undefined ? {} : { output: e.output }),
        to: e.to,
        inputIndex: e.inputIndex,
        type: typeOfOutput(parent, e.output),
      };
    }),
  };
}

const quoteDot = (text: string): string => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const mermaidId = (id: string): string => `s_${id.replace(/[^A-Za-z0-9_]/g, '_')}`;
const mermaidText = (text: string): string => text.replace(/"/g, '#quot;');
/** An edge's label: its type, after the named output it reads. */
const edgeLabel = (e: GraphModel['edges'][number]): string =>
  e.output === undefined ? (e.type ?? '') : `${e.output}: ${e.type ?? '?'}`;

export function renderGraph(model: GraphModel, format: GraphFormat): string {
  if (format === 'mermaid') {
    const lines = ['flowchart LR'];
    for (const s of model.stages) {
      const label = mermaidText(`${s.id}<br/>${s.kind} ${s.component}`);
      const shape =
        s.kind === 'input'
          ? `(["${label}"])`
          : s.kind === 'output'
            ? `[/"${label}"/]`
            : `["${label}"]`;
      lines.push(`  ${mermaidId(s.id)}${shape}`);
    }
    for (const e of model.edges) {
      lines.push(`  ${mermaidId(e.from)} -->|"${mermaidText(edgeLabel(e))}"| ${mermaidId(e.to)}`);
    }
    return `${lines.join('\n')}\n`;
  }
  if (format === 'dot') {
    const lines = [`digraph ${quoteDot(model.name)} {`, '  rankdir=LR;', '  node [shape=box];'];
    for (const s of model.stages) {
      const shape = s.kind === 'input' ? 'ellipse' : s.kind === 'output' ? 'parallelogram' : 'box';
      lines.push(
        `  ${quoteDot(s.id)} [label=${quoteDot(`${s.id}\n${s.kind} ${s.component}`)}, shape=${shape}];`,
      );
    }
    for (const e of model.edges) {
      lines.push(`  ${quoteDot(e.from)} -> ${quoteDot(e.to)} [label=${quoteDot(edgeLabel(e))}];`);
    }
    lines.push('}');
    return `${lines.join('\n')}\n`;
  }
  const lines = [`pipeline ${model.name}`, '', 'stages:'];
  for (const s of model.stages) {
    const types =
      s.kind === 'input'
        ? `→ ${s.outputType}`
        : `(${s.inputTypes.join(', ')})${s.outputType ? ` → ${s.outputType}` : ''}`;
    lines.push(`  ${s.id}  ${s.kind} ${s.component}  ${types}`);
  }
  lines.push('', 'edges:');
  for (const e of model.edges) {
    const from = formatOutputRef({ stage: e.from, output: e.output });
    lines.push(`  ${from} ─▶ ${e.to}  [input ${e.inputIndex + 1}: ${e.type ?? '?'}]`);
  }
  return `${lines.join('\n')}\n`;
}
