import type { GraphModel } from './graph-renderer.js';

/** Box size and gaps of the dashboard's DAG, in SVG user units. */
export const NODE_WIDTH = 230;
export const NODE_HEIGHT = 104;
/** Wide enough for the output type written beside each stage's out-port. */
const GAP_X = 170;
const GAP_Y = 26;
const MARGIN = 16;

export interface LaidOutNode {
  id: string;
  kind: string;
  component: string;
  /** The message type the stage emits (written once at its out-port: every out-edge carries it). */
  outputType: string | null;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LaidOutEdge {
  from: string;
  to: string;
  inputIndex: number;
  /** The message type on the edge, when known. */
  type: string | null;
  /**
   * SVG path data, from the out-port (right middle) of `from` to the left side of `to`, where a
   * stage's inputs arrive spread top to bottom in input order.
   */
  path: string;
}

export interface DashboardLayout {
  name: string;
  width: number;
  height: number;
  nodes: LaidOutNode[];
  edges: LaidOutEdge[];
}

/**
 * A layered drawing of the DAG, left to right: a stage's layer is one more than its deepest
 * parent's (inputs in layer 0); inside a layer stages are ordered by the mean position of their
 * parents (one barycentre pass, which untangles the fan-out/fan-in shapes pipelines have), and
 * each layer is centred vertically. Small graphs only: stages are few, so no crossing
 * minimisation beyond that.
 */
export function layoutGraph(model: GraphModel): DashboardLayout {
  const parents = new Map<string, string[]>(model.stages.map((s) => [s.id, []]));
  for (const e of model.edges) parents.get(e.to)?.push(e.from);
  const layerOf = new Map<string, number>();
  const visiting = new Set<string>();
  const layer = (id: string): number => {
    const known = layerOf.get(id);
    if (known !== undefined) return known;
    // A cycle cannot pass validation; guard anyway so a bad document cannot hang the page.
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const depth = Math.max(-1, ...(parents.get(id) ?? []).map(layer)) + 1;
    visiting.delete(id);
    layerOf.set(id, depth);
    return depth;
  };
  const layers: string[][] = [];
  for (const s of model.stages) (layers[layer(s.id)] ??= []).push(s.id);
  const rowOf = new Map<string, number>();
  for (const ids of layers) {
    const weight = (id: string) => {
      const rows = (parents.get(id) ?? []).map((p) => rowOf.get(p) ?? 0);
      return rows.length === 0 ? 0 : rows.reduce((a, b) => a + b, 0) / rows.length;
    };
    // Stable: stages with equal weight keep the pipeline's (topological) order.
    const ordered = ids
      .map((id, i) => ({ id, i, w: weight(id) }))
      .sort((a, b) => a.w - b.w || a.i - b.i);
    ordered.forEach(({ id }, row) => rowOf.set(id, row));
    ids.splice(0, ids.length, ...ordered.map((o) => o.id));
  }
  const tallest = Math.max(1, ...layers.map((ids) => ids.length));
  const height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * GAP_Y;
  const byId = new Map(model.stages.map((s) => [s.id, s]));
  const nodes: LaidOutNode[] = [];
  layers.forEach((ids, column) => {
    const columnHeight = ids.length * NODE_HEIGHT + (ids.length - 1) * GAP_Y;
    const top = (height - columnHeight) / 2;
    ids.forEach((id, row) => {
      const stage = byId.get(id)!;
      nodes.push({
        id,
        kind: stage.kind,
        component: stage.component,
        outputType: stage.outputType,
        x: MARGIN + column * (NODE_WIDTH + GAP_X),
        y: top + row * (NODE_HEIGHT + GAP_Y),
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
      });
    });
  });
  const nodeOf = new Map(nodes.map((n) => [n.id, n]));
  const inputsOf = (id: string) =>
    model.edges.filter((e) => e.to === id).sort((a, b) => a.inputIndex - b.inputIndex);
  const edges: LaidOutEdge[] = [];
  for (const e of model.edges) {
    const from = nodeOf.get(e.from);
    const to = nodeOf.get(e.to);
    if (from === undefined || to === undefined) continue;
    const inputs = inputsOf(e.to);
    const x1 = from.x + from.width;
    const y1 = from.y + from.height / 2;
    const x2 = to.x;
    const y2 = to.y + (to.height * (inputs.indexOf(e) + 1)) / (inputs.length + 1);
    const bend = Math.max(30, (x2 - x1) / 2);
    edges.push({
      from: e.from,
      to: e.to,
      inputIndex: e.inputIndex,
      type: e.type,
      path: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
    });
  }
  const width = MARGIN * 2 + layers.length * NODE_WIDTH + Math.max(0, layers.length - 1) * GAP_X;
  return { name: model.name, width, height, nodes, edges };
}
