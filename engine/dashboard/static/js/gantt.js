// The timeline of one execution's task runs: a row per task run (children indented under
// their flowable), a bar coloured by the run's state history, and a tick per attempt start.

import { badge, fmtDuration, h } from "./dom.js";

const INDENT_PX = 16;

function ms(iso) {
  return iso ? new Date(iso).getTime() : null;
}

// Parents before children, siblings in the API's order (Kestra's taskRunList: creation order).
export function ordered(runs) {
  const ids = new Set(runs.map((r) => r.id));
  const children = new Map();
  for (const r of runs) {
    const parent = r.parentTaskRunId && ids.has(r.parentTaskRunId) ? r.parentTaskRunId : "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(r);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const r of children.get(parent) || []) {
      out.push([r, depth]);
      walk(r.id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

function segments(run, t0, span, now) {
  const hist = run.state.histories || [];
  const out = [];
  for (let i = 0; i < hist.length; i++) {
    const from = ms(hist[i].date);
    const to = i + 1 < hist.length ? ms(hist[i + 1].date) : (run.state.endDate ? from : now);
    if (from === null) continue;
    const state = hist[i].state;
    const seg = h("div", { class: `seg s-${state}`, title: `${state} ${fmtDuration(to - from)}` });
    seg.style.left = `${((from - t0) / span) * 100}%`;
    seg.style.width = `${(Math.max(0, to - from) / span) * 100}%`;
    out.push(seg);
  }
  return out;
}

function ticks(run, t0, span) {
  const attempts = run.attempts || [];
  if (attempts.length < 2) return [];
  return attempts.slice(1).map((a, i) => {
    const first = a.history && a.history[0];
    const at = first ? ms(first[1]) : null;
    if (at === null) return null;
    const tick = h("div", { class: "tick", title: `attempt ${i + 2}` });
    tick.style.left = `${((at - t0) / span) * 100}%`;
    return tick;
  });
}

// `execution` has state.startDate/endDate and taskRunList; `onSelect(run)` on a row click.
export function renderGantt(execution, selectedId, onSelect) {
  const runs = execution.taskRunList || [];
  const now = Date.now();
  const starts = runs.map((r) => ms(r.state.startDate)).filter((x) => x !== null);
  const t0 = ms(execution.state.startDate) ?? (starts.length ? Math.min(...starts) : now);
  const t1 = ms(execution.state.endDate) ?? now;
  const span = Math.max(1, t1 - t0);
  const scale = h("div", { class: "scale" },
    ...[0, 0.25, 0.5, 0.75, 1].map((f) => {
      const label = h("span", null, fmtDuration(span * f));
      label.style.left = `${f * 100}%`;
      return label;
    }));
  const root = h("div", { class: "gantt", id: "gantt" },
    h("div", { class: "axis" }, h("span", null, "task run"), scale, h("span", { class: "dur" }, "duration")));
  if (!runs.length) {
    root.append(h("div", { class: "empty" }, "No task runs yet."));
    return root;
  }
  for (const [run, depth] of ordered(runs)) {
    const label = h("div", { class: "label" }, badge(run.state.current), run.taskId,
      run.value !== null && run.value !== undefined ? h("span", { class: "muted" }, `[${run.value}]`) : null,
      (run.attempts || []).length > 1 ? h("span", { class: "attempts" }, `×${run.attempts.length} attempts`) : null);
    label.style.paddingLeft = `${depth * INDENT_PX}px`;
    const track = h("div", { class: "track" }, ...segments(run, t0, span, now), ...ticks(run, t0, span));
    const row = h("div", {
      class: `row${run.id === selectedId ? " selected" : ""}`,
      "data-task-run": run.id,
      "data-task-id": run.taskId,
      "data-state": run.state.current,
      onclick: () => onSelect(run),
    }, label, track, h("div", { class: "dur" }, fmtDuration(run.state.durationMs ?? (run.state.startDate ? now - ms(run.state.startDate) : null))));
    root.append(row);
  }
  return root;
}
