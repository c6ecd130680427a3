// The CodeFeedr dashboard page: draws the DAG the server laid out (SVG), keeps each stage's
// figures current from server-sent events, and plots throughput with uPlot. Plain script, no
// build step; everything comes from the dashboard server itself.
/* global document, window, EventSource, uPlot */
(() => {
  'use strict';
  const SVG = 'http://www.w3.org/2000/svg';
  const HISTORY_S = 10 * 60;
  const PALETTE = [
    '#2e90fa',
    '#7a5af8',
    '#12b76a',
    '#f79009',
    '#ee46bc',
    '#0e9384',
    '#d92d20',
    '#667085',
  ];

  const $ = (id) => document.getElementById(id);
  const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

  const count = (n) => (n === null || n === undefined ? '—' : integer.format(n));
  const rate = (n) =>
    n === null || n === undefined ? '—' : (n < 10 ? decimal : integer).format(n);
  function duration(ms) {
    if (ms === null || ms === undefined) return '—';
    const a = Math.abs(ms);
    if (a < 1) return `${decimal.format(ms)} ms`;
    if (a < 1000) return `${integer.format(ms)} ms`;
    if (a < 60_000) return `${decimal.format(ms / 1000)} s`;
    if (a < 3_600_000) return `${decimal.format(ms / 60_000)} min`;
    if (a < 86_400_000) return `${decimal.format(ms / 3_600_000)} h`;
    return `${decimal.format(ms / 86_400_000)} d`;
  }
  const time = (epochMs) =>
    epochMs === null || epochMs === undefined
      ? '—'
      : new Date(epochMs)
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d+Z$/, 'Z');
  const percent = (share) => `${integer.format(share * 100)}%`;

  function el(name, attributes = {}, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  let graph = null;
  let plot = null;
  let plotStages = [];
  let plotData = [[]];

  // ---- the DAG -------------------------------------------------------------------------
  const FIGURE_LINES = [
    [
      ['in/s', 'inPerSec', rate],
      ['out/s', 'outPerSec', rate],
    ],
    [
      ['in', 'recordsIn', count],
      ['out', 'recordsOut', count],
    ],
    [
      ['lag', 'consumerLag', count],
      ['wm', 'watermark', time],
    ],
    [
      ['bp', 'backpressureShare', percent],
      ['dead', 'deadLettered', count],
      ['err', 'errors', count],
      ['batch', 'batchLatencyMs', duration],
    ],
  ];

  function drawGraph() {
    const svg = $('dag');
    svg.replaceChildren();
    const notice = $('notice');
    if (graph === null) {
      notice.hidden = false;
      notice.textContent = 'Waiting for a metrics endpoint to answer…';
      return;
    }
    $('pipeline').textContent = graph.pipeline;
    document.title = `${graph.pipeline} · CodeFeedr dashboard`;
    $('mode').textContent = graph.mode;
    $('buffer').textContent =
      graph.buffer === null ? '—' : (graph.buffer.component ?? graph.buffer.kind);
    notice.hidden = graph.edgesKnown;
    notice.textContent = graph.edgesKnown
      ? ''
      : 'No endpoint serves /pipeline.json (an older worker): stages are shown without their edges.';
    const { layout } = graph;
    svg.setAttribute('width', layout.width);
    svg.setAttribute('height', layout.height);
    svg.setAttribute('viewBox', `0 0 ${layout.width} ${layout.height}`);
    const defs = el('defs');
    const marker = el('marker', {
      id: 'arrow',
      viewBox: '0 0 10 10',
      refX: 10,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto-start-reverse',
    });
    marker.append(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#98a2b3' }));
    defs.append(marker);
    svg.append(defs);
    const through = graph.mode === 'inline' || graph.buffer === null ? null : graph.buffer.kind;
    for (const e of layout.edges) {
      const g = el('g', { class: 'edge-group', 'data-from': e.from, 'data-to': e.to });
      const how = through === null ? 'in memory' : `via ${through} topic of ${e.from}`;
      g.append(
        el(
          'title',
          {},
          `${e.from} → ${e.to} (input ${e.inputIndex + 1}): ${e.type ?? '?'}, ${how}`,
        ),
      );
      g.append(el('path', { class: 'edge', d: e.path, 'marker-end': 'url(#arrow)' }));
      svg.append(g);
    }
    // Every out-edge of a stage carries its output type: written once, at its out-port.
    for (const n of layout.nodes) {
      if (!layout.edges.some((e) => e.from === n.id)) continue;
      const label = [n.outputType, through === null ? null : `via ${through}`]
        .filter(Boolean)
        .join(' · ');
      svg.append(
        el(
          'text',
          {
            class: 'edge-label',
            'data-from': n.id,
            x: n.x + n.width + 6,
            y: n.y + n.height / 2 - 6,
          },
          label,
        ),
      );
    }
    for (const n of layout.nodes) {
      const g = el('g', {
        class: `node kind-${n.kind} idle`,
        'data-stage': n.id,
        transform: `translate(${n.x} ${n.y})`,
      });
      g.append(el('rect', { width: n.width, height: n.height }));
      g.append(el('text', { class: 'title', x: 10, y: 18 }, n.id));
      g.append(el('text', { class: 'sub', x: 10, y: 33 }, `${n.kind} · ${n.component}`));
      FIGURE_LINES.forEach((line, i) => {
        const text = el('text', { class: 'figures', x: 10, y: 51 + i * 15 });
        line.forEach(([label, field], j) => {
          text.append(
            el('tspan', { class: 'label', fill: '#667085' }, `${j > 0 ? '  ' : ''}${label} `),
          );
          text.append(el('tspan', { 'data-field': field }, '—'));
        });
        g.append(text);
      });
      svg.append(g);
    }
    buildStageRows();
    buildPlot();
  }

  // ---- the stage table -------------------------------------------------------------------
  const COLUMNS = [
    ['kind', (s) => s.kind, false],
    ['recordsIn', (s) => count(s.recordsIn), true],
    ['inPerSec', (s) => rate(s.inPerSec), true],
    ['recordsOut', (s) => count(s.recordsOut), true],
    ['outPerSec', (s) => rate(s.outPerSec), true],
    ['consumerLag', (s) => count(s.consumerLag), true],
    ['watermark', (s) => time(s.watermark), true],
    ['eventTimeLagMs', (s) => duration(s.eventTimeLagMs), true],
    [
      'backpressure',
      (s) => `${duration(s.backpressureMs)} (${percent(s.backpressureShare)})`,
      true,
    ],
    ['deadLettered', (s) => count(s.deadLettered), true],
    ['errors', (s) => count(s.errors), true],
    ['batchLatencyMs', (s) => duration(s.batchLatencyMs), true],
    ['workers', (s) => count(s.workers), true],
  ];

  function buildStageRows() {
    const body = $('stages').tBodies[0];
    body.replaceChildren();
    for (const n of graph.layout.nodes) {
      const tr = document.createElement('tr');
      tr.dataset.stage = n.id;
      const name = document.createElement('td');
      name.textContent = n.id;
      tr.append(name);
      for (const [field, , numeric] of COLUMNS) {
        const td = document.createElement('td');
        td.dataset.field = field;
        if (numeric) td.className = 'n';
        td.textContent = field === 'kind' ? n.kind : '—';
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function showFrame(frame) {
    const byStage = new Map(frame.stages.map((s) => [s.stage, s]));
    for (const node of document.querySelectorAll('#dag .node')) {
      const s = byStage.get(node.dataset.stage);
      node.classList.toggle('idle', s === undefined);
      node.classList.toggle('failing', s !== undefined && s.errors > 0);
      for (const line of FIGURE_LINES) {
        for (const [, field, format] of line) {
          node.querySelector(`[data-field="${field}"]`).textContent =
            s === undefined ? '—' : format(s[field]);
        }
      }
    }
    for (const tr of $('stages').tBodies[0].rows) {
      const s = byStage.get(tr.dataset.stage);
      for (const [field, format] of COLUMNS) {
        if (field === 'kind') continue;
        tr.querySelector(`[data-field="${field}"]`).textContent = s === undefined ? '—' : format(s);
      }
    }
  }

  function showWorkers(frame) {
    const workers = $('workers').tBodies[0];
    workers.replaceChildren();
    for (const w of frame.workers) {
      const tr = document.createElement('tr');
      tr.dataset.url = w.url;
      tr.dataset.state = w.state;
      const cells = [
        w.url,
        w.state === 'up' ? 'up' : `down: ${w.error}`,
        w.stages.join(', ') || '—',
        w.lastSeen === null ? '—' : count(w.recordsOut),
        w.state === 'up' ? rate(w.outPerSec) : '—',
        w.lastSeen === null ? 'never' : `${duration(frame.at - w.lastSeen)} ago`,
      ];
      cells.forEach((text, i) => {
        const td = document.createElement('td');
        td.textContent = text;
        if (i === 1) td.className = `state-${w.state}`;
        if (i === 3 || i === 4) td.className = 'n';
        tr.append(td);
      });
      workers.append(tr);
    }
  }

  // ---- the throughput plot ---------------------------------------------------------------
  function buildPlot() {
    const stages = graph.layout.nodes.map((n) => n.id);
    if (plot !== null && stages.join('\n') === plotStages.join('\n')) return;
    const old = plotData;
    const oldStages = plotStages;
    plotStages = stages;
    plotData = [
      old[0],
      ...stages.map((id) => old[oldStages.indexOf(id) + 1] ?? old[0].map(() => null)),
    ];
    plot?.destroy();
    const container = $('plot');
    plot = new uPlot(
      {
        width: Math.max(320, container.clientWidth - 2),
        height: 260,
        scales: { x: { time: true } },
        axes: [{}, { label: 'records/s', size: 70 }],
        series: [
          {},
          ...stages.map((id, i) => ({
            label: id,
            stroke: PALETTE[i % PALETTE.length],
            width: 1.5,
            value: (_u, v) => (v === null ? '—' : rate(v)),
          })),
        ],
      },
      plotData,
      container,
    );
  }

  function addPoint(point) {
    if (point === undefined || point === null) return;
    const t = point.at / 1000;
    plotData[0].push(t);
    plotStages.forEach((id, i) => plotData[i + 1].push(point.out[id] ?? null));
    while (plotData[0].length > 0 && plotData[0][0] < t - HISTORY_S)
      for (const series of plotData) series.shift();
  }

  function setHistory(history) {
    plotData = [[], ...plotStages.map(() => [])];
    for (const point of history) addPoint(point);
    plot?.setData(plotData);
  }

  window.addEventListener('resize', () => {
    if (plot !== null)
      plot.setSize({ width: Math.max(320, $('plot').clientWidth - 2), height: 260 });
  });

  // ---- live updates ----------------------------------------------------------------------
  const events = new EventSource('/events');
  const connection = $('connection');
  events.onopen = () => {
    connection.textContent = 'live';
    connection.className = 'connection up';
  };
  events.onerror = () => {
    // EventSource reconnects by itself (retry: 1 s); a dashboard of a run that ended stays as it was.
    connection.textContent = 'disconnected, retrying';
    connection.className = 'connection down';
  };
  events.addEventListener('state', (message) => {
    const state = JSON.parse(message.data);
    graph = state.graph;
    drawGraph();
    if (graph !== null) setHistory(state.history);
    if (state.frame !== null) {
      showWorkers(state.frame);
      if (graph !== null) showFrame(state.frame);
    }
  });
  events.addEventListener('graph', (message) => {
    graph = JSON.parse(message.data);
    drawGraph();
  });
  events.addEventListener('frame', (message) => {
    const { frame, point } = JSON.parse(message.data);
    showWorkers(frame);
    if (graph === null) return;
    addPoint(point);
    plot?.setData(plotData);
    showFrame(frame);
  });
})();
