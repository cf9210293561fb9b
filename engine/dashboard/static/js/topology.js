// Draw a flow's task tree (GET /api/v1/dashboard/flows/.../graph) as SVG, left to right, in a
// view that fits it to its box and zooms (buttons, ctrl + wheel) so nothing is ever clipped.
//
// Layout is recursive: a task is a box as wide as its id and type need; a flowable is a group
// box whose branches are lanes stacked top to bottom; a lane is a chain of its nodes (arrows
// between them), except in a Dag, whose tasks are placed in columns by dependency depth with
// an edge per dependsOn. Parallel-like groups (Parallel, If, Switch) get a fan-out and fan-in
// edge per lane. On the execution page each box is coloured by its task runs' state.

import { h, s } from "./dom.js";

const NODE_MIN_W = 150;
const NODE_MAX_W = 340;
const NODE_H = 42;
const GAP_X = 34;
const GAP_Y = 14;
const PAD = 10;
const TEXT_PAD = 22;
const HEADER = 34;
const LANE_LABEL = 16;
const TRIGGER_H = 30;
const ZOOM_MIN = 0.2;
const ZOOM_MAX = 2.5;
const ZOOM_STEP = 1.25;
// A fitted drawing is never blown up past this (a two-task flow would look silly at 3x).
const FIT_MAX = 1.2;
// Fit into the box's width and at most this height (taller drawings scroll).
const FIT_HEIGHT = 560;

let measurer = null;

function textWidth(text, font) {
  if (!measurer) measurer = document.createElement("canvas").getContext("2d");
  measurer.font = font;
  return measurer.measureText(text).width;
}

function typeText(node) {
  return node.detail ? `${node.short} · ${node.detail}` : node.short;
}

function nodeWidth(node) {
  const w = Math.max(textWidth(node.id, "12px system-ui, sans-serif"),
    textWidth(typeText(node), "10.5px system-ui, sans-serif"));
  return Math.min(NODE_MAX_W, Math.max(NODE_MIN_W, Math.ceil(w) + TEXT_PAD));
}

function fit(text, font, width) {
  if (textWidth(text, font) <= width) return text;
  let cut = text.length;
  while (cut > 1 && textWidth(`${text.slice(0, cut)}…`, font) > width) cut--;
  return `${text.slice(0, cut)}…`;
}

function lanesOf(node) {
  return node.branches || [];
}

function dagColumns(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map();
  const level = (n, seen = new Set()) => {
    if (depth.has(n.id)) return depth.get(n.id);
    if (seen.has(n.id)) return 0; // a cycle is a validation error; draw it flat
    seen.add(n.id);
    const deps = (n.dependsOn || []).filter((d) => byId.has(d));
    const d = deps.length ? 1 + Math.max(...deps.map((x) => level(byId.get(x), seen))) : 0;
    depth.set(n.id, d);
    return d;
  };
  const columns = [];
  for (const n of nodes) (columns[level(n)] ||= []).push(n);
  return columns.filter(Boolean);
}

class Layout {
  constructor(states) {
    this.states = states || null;
    this.cache = new WeakMap();
  }

  chain(nodes) {
    if (!nodes.length) return { w: 60, h: 20 };
    let w = 0;
    let h = 0;
    for (const n of nodes) {
      const m = this.measure(n);
      w += m.w;
      h = Math.max(h, m.h);
    }
    return { w: w + GAP_X * (nodes.length - 1), h };
  }

  dag(nodes) {
    let w = 0;
    let h = 0;
    const columns = dagColumns(nodes);
    for (const col of columns) {
      let cw = 0;
      let ch = 0;
      for (const n of col) {
        const m = this.measure(n);
        cw = Math.max(cw, m.w);
        ch += m.h;
      }
      w += cw;
      h = Math.max(h, ch + GAP_Y * (col.length - 1));
    }
    return { w: w + GAP_X * Math.max(0, columns.length - 1), h };
  }

  lane(node, lane) {
    return node.layout === "dag" ? this.dag(lane.nodes) : this.chain(lane.nodes);
  }

  measure(node) {
    if (this.cache.has(node)) return this.cache.get(node);
    const lanes = lanesOf(node);
    const own = nodeWidth(node);
    let m;
    if (!lanes.length) {
      m = { w: own, h: NODE_H };
    } else {
      const fan = node.layout === "parallel" ? GAP_X : 0;
      let w = own - 2 * PAD;
      let h = HEADER;
      lanes.forEach((lane, i) => {
        const lm = this.lane(node, lane);
        const label = lane.label ? textWidth(lane.label, "600 10.5px system-ui, sans-serif") : 0;
        w = Math.max(w, lm.w + 2 * fan, label);
        h += lm.h + (lane.label ? LANE_LABEL : 0) + (i ? GAP_Y : 0);
      });
      m = { w: w + 2 * PAD, h: h + PAD };
    }
    this.cache.set(node, m);
    return m;
  }

  stateOf(node) {
    const st = this.states && this.states.get(node.id);
    return st || null;
  }
}

function edge(layer, x1, y1, x2, y2) {
  const mx = (x1 + x2) / 2;
  layer.append(
    s("path", {
      class: "edge",
      d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
      "marker-end": "url(#arrow)",
    }),
  );
}

// Draw `node` with its top-left at (x, y); returns its size.
function draw(L, layer, edges, node, x, y) {
  const m = L.measure(node);
  const lanes = lanesOf(node);
  const state = L.stateOf(node);
  const cls = `node kind-${node.kind}${node.layout ? ` layout-${node.layout}` : ""}` +
    `${node.disabled ? " disabled" : ""}${state ? ` state-${state.state}` : ""}`;
  const g = s("g", { class: cls, "data-task-id": node.id, "data-type": node.short, "data-state": state ? state.state : null });
  const detail = node.detail ? `\n${node.detail}` : "";
  const runs = state && state.runs > 1 ? `\n${state.runs} task runs` : "";
  g.append(
    s("title", null, `${node.id}: ${node.type}${detail}${state ? `\n${state.state}` : ""}${runs}`),
    s("rect", { x, y, width: m.w, height: m.h, rx: 6 }),
  );
  const inner = (lanes.length ? m.w : nodeWidth(node)) - TEXT_PAD;
  g.append(
    s("text", { x: x + 10, y: y + 17 }, fit(node.id, "12px system-ui, sans-serif", inner)),
    s("text", { x: x + 10, y: y + 31, class: "type" },
      fit(typeText(node), "10.5px system-ui, sans-serif", inner - (state && state.runs > 1 ? 30 : 0))),
  );
  if (state && state.runs > 1) {
    g.append(s("text", { x: x + m.w - 8, y: y + 31, class: "runs", "text-anchor": "end" }, `×${state.runs}`));
  }
  layer.append(g);
  let ly = y + HEADER;
  const fan = node.layout === "parallel" ? GAP_X : 0;
  for (const lane of lanes) {
    if (lane.label) {
      layer.append(s("text", { x: x + PAD, y: ly + 11, class: "lane" }, lane.label));
      ly += LANE_LABEL;
    }
    const lm = L.lane(node, lane);
    const lx = x + PAD + fan;
    if (node.layout === "dag") drawDag(L, layer, edges, lane.nodes, lx, ly);
    else {
      const ends = drawChain(L, layer, edges, lane.nodes, lx, ly);
      if (fan && ends) {
        edge(edges, x + PAD, y + HEADER / 2 + 8, ends.first, ly + NODE_H / 2);
        edge(edges, ends.last, ly + NODE_H / 2, x + m.w - PAD, y + HEADER / 2 + 8);
      }
    }
    ly += lm.h + GAP_Y;
  }
  return m;
}

function drawChain(L, layer, edges, nodes, x, y) {
  if (!nodes.length) return null;
  let cx = x;
  let prev = null;
  for (const n of nodes) {
    const m = draw(L, layer, edges, n, cx, y);
    if (prev !== null) edge(edges, prev, y + NODE_H / 2, cx, y + NODE_H / 2);
    prev = cx + m.w;
    cx += m.w + GAP_X;
  }
  return { first: x, last: prev };
}

function drawDag(L, layer, edges, nodes, x, y) {
  const at = new Map();
  let cx = x;
  for (const col of dagColumns(nodes)) {
    let cy = y;
    let cw = 0;
    for (const n of col) {
      const m = draw(L, layer, edges, n, cx, cy);
      at.set(n.id, { x: cx, y: cy, w: m.w });
      cy += m.h + GAP_Y;
      cw = Math.max(cw, m.w);
    }
    cx += cw + GAP_X;
  }
  for (const n of nodes) {
    const to = at.get(n.id);
    for (const d of n.dependsOn || []) {
      const from = at.get(d);
      if (from) edge(edges, from.x + from.w, from.y + NODE_H / 2, to.x, to.y + NODE_H / 2);
    }
  }
}

// The whole flow: triggers, then the task chain; errors and finally as labelled lanes below.
// `states` (optional): task id -> {state, runs}, to colour an execution's tasks.
export function renderGraph(graph, states) {
  const L = new Layout(states);
  const lanes = [{ label: "", nodes: graph.tasks }];
  if (graph.errors.length) lanes.push({ label: "errors", nodes: graph.errors });
  if (graph.finallyTasks.length) lanes.push({ label: "finally", nodes: graph.finallyTasks });
  const trigW = graph.triggers.length
    ? Math.max(...graph.triggers.map((t) => Math.min(NODE_MAX_W,
      Math.ceil(textWidth(`⚡ ${t.id} (${t.short})`, "12px system-ui, sans-serif")) + 2 * TEXT_PAD))) + GAP_X
    : 0;
  let w = trigW;
  let h = 0;
  lanes.forEach((lane, i) => {
    const m = L.chain(lane.nodes);
    w = Math.max(w, trigW + m.w);
    h += m.h + (lane.label ? LANE_LABEL : 0) + (i ? GAP_Y * 2 : 0);
  });
  h = Math.max(h, graph.triggers.length * (TRIGGER_H + GAP_Y));
  const width = w + 2 * PAD + 10;
  const height = h + 2 * PAD;
  const svg = s("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    id: "topology-svg",
    "data-flow": `${graph.namespace}/${graph.id}`,
  });
  svg.append(
    s("defs", null,
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M0,0 L10,5 L0,10 z" }))),
  );
  const edges = s("g");
  const layer = s("g");
  svg.append(edges, layer);
  let y = PAD;
  lanes.forEach((lane, i) => {
    if (i) y += GAP_Y * 2;
    if (lane.label) {
      layer.append(s("text", { x: PAD + trigW, y: y + 11, class: "lane" }, lane.label));
      y += LANE_LABEL;
    }
    const ends = drawChain(L, layer, edges, lane.nodes, PAD + trigW, y);
    if (i === 0) {
      graph.triggers.forEach((t, k) => {
        const ty = PAD + k * (TRIGGER_H + GAP_Y);
        const tw = trigW - GAP_X;
        const g = s("g", { class: "node trigger", "data-trigger-id": t.id },
          s("title", null, `${t.id}: ${t.type}`),
          s("rect", { x: PAD, y: ty, width: tw, height: TRIGGER_H, rx: 15 }),
          s("text", { x: PAD + 12, y: ty + 19 }, fit(`⚡ ${t.id} (${t.short})`, "12px system-ui, sans-serif", tw - 16)));
        layer.append(g);
        if (ends) edge(edges, PAD + tw, ty + TRIGGER_H / 2, ends.first, y + NODE_H / 2);
      });
    }
    y += L.chain(lane.nodes).h;
  });
  return svg;
}

// A box that shows one drawing at a time, fitted to its width until the user zooms.
// `onNode(taskId)` is called when a task box is clicked.
export function graphView({ id = "topology", onNode } = {}) {
  const canvas = h("div", { class: "topology-canvas", id: `${id}-canvas` });
  const zoomLabel = h("span", { class: "muted zoom-label", id: `${id}-zoom` }, "");
  let svg = null;
  let zoom = 1;
  let fitted = true;

  const apply = () => {
    if (!svg) return;
    const w = Number(svg.dataset.w);
    const hgt = Number(svg.dataset.h);
    svg.setAttribute("width", String(Math.round(w * zoom)));
    svg.setAttribute("height", String(Math.round(hgt * zoom)));
    zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
    canvas.dataset.zoom = zoom.toFixed(3);
  };
  const fitNow = () => {
    if (!svg) return;
    const avail = Math.max(100, canvas.clientWidth - 4);
    const w = Number(svg.dataset.w);
    const hgt = Number(svg.dataset.h);
    zoom = Math.max(ZOOM_MIN, Math.min(FIT_MAX, avail / w, FIT_HEIGHT / hgt));
    fitted = true;
    apply();
  };
  const zoomBy = (factor) => {
    zoom = Math.max(ZOOM_MIN, Math.min(ZOOM_MAX, zoom * factor));
    fitted = false;
    apply();
  };
  const button = (label, title, bid, fn) => h("button", { type: "button", class: "ghost small", title, id: bid, onclick: fn }, label);
  const toolbar = h("div", { class: "zoom-bar" },
    button("−", "Zoom out", `${id}-zoom-out`, () => zoomBy(1 / ZOOM_STEP)),
    button("+", "Zoom in", `${id}-zoom-in`, () => zoomBy(ZOOM_STEP)),
    button("Fit", "Fit to the box", `${id}-fit`, fitNow),
    button("1:1", "Actual size", `${id}-actual`, () => { zoom = 1; fitted = false; apply(); }),
    zoomLabel);
  canvas.addEventListener("wheel", (ev) => {
    if (!ev.ctrlKey) return;
    ev.preventDefault();
    zoomBy(ev.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP);
  }, { passive: false });
  canvas.addEventListener("click", (ev) => {
    const g = ev.target.closest && ev.target.closest("g.node[data-task-id]");
    if (g && onNode) onNode(g.dataset.taskId);
  });
  const resize = new ResizeObserver(() => { if (fitted) fitNow(); });
  resize.observe(canvas);

  const element = h("div", { class: "topology", id }, toolbar, canvas);
  return {
    element,
    show(graph, states) {
      const next = renderGraph(graph, states);
      next.dataset.w = next.getAttribute("width");
      next.dataset.h = next.getAttribute("height");
      const first = svg === null;
      svg = next;
      canvas.replaceChildren(svg);
      if (first || fitted) fitNow();
      else apply();
    },
    stale(on) {
      element.classList.toggle("stale", on);
    },
    disconnect: () => resize.disconnect(),
  };
}
