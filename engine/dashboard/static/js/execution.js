// One execution: state, actions (kill, resume, restart, replay), the task-run timeline, the
// errors, one task run's attempts (state, worker, times, error) and outputs, and tabs for the
// live logs (GET /api/v1/executions/{id}/follow; level filter, search, per task run or
// attempt), the topology coloured by state, the outputs, and the inputs and trigger.

import { ApiError, api, events, get } from "./api.js";
import { TERMINAL, badge, fmtDate, fmtDuration, h, hashFor, json, notify, showError } from "./dom.js";
import { renderGantt } from "./gantt.js";
import { LogView } from "./logs.js";
import { graphView } from "./topology.js";

// The read model trails a new execution by a projection hop: keep asking for this long.
const APPEAR_WAIT_MS = 15000;
const APPEAR_POLL_MS = 300;
// At most one full reload (with task runs) per this many ms while events stream in.
const RELOAD_MIN_MS = 400;
// After the follow stream drops (server restart, its hour-long limit), reconnect after this.
const RECONNECT_MS = 2000;

const ACTIONS = {
  kill: { label: "Kill", cls: "danger", allowed: (s) => !TERMINAL.has(s), method: "DELETE", path: "kill" },
  resume: { label: "Resume", allowed: (s) => s === "PAUSED", method: "POST", path: "resume" },
  restart: { label: "Restart", allowed: (s) => s === "FAILED" || s === "KILLED", method: "POST", path: "restart" },
  replay: { label: "Replay", allowed: (s) => TERMINAL.has(s), method: "POST", path: "replay" },
};
const LOOP = "io.kestra.plugin.core.flow.Loop";
const TABS = [["logs", "Logs"], ["topology", "Topology"], ["outputs", "Outputs"], ["inputs", "Inputs & trigger"]];
// Which state a task box shows when a task ran several times (a loop): the most telling one.
const STATE_RANK = ["FAILED", "KILLED", "RUNNING", "RETRYING", "PAUSED", "KILLING", "CREATED", "QUEUED",
  "WARNING", "RESTARTED", "SUCCESS", "CANCELLED", "SKIPPED"];

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
});

function attemptTimes(a) {
  const hist = a.history || [];
  const start = hist.length ? hist[0][1] : null;
  const last = hist.length ? hist[hist.length - 1] : null;
  const end = last && TERMINAL.has(last[0]) ? last[1] : null;
  const ms = start ? (end ? new Date(end) : new Date()) - new Date(start) : null;
  return { start, end, ms };
}

// A map of outputs as a table: scalars as text, anything else as JSON.
export function valueTable(values, id) {
  const entries = Object.entries(values || {});
  if (!entries.length) return h("div", { class: "muted", id }, "none");
  return h("table", { class: "kv", id },
    h("tbody", null, ...entries.map(([k, v]) => h("tr", { "data-key": k },
      h("th", null, k),
      h("td", null, v !== null && typeof v === "object" ? json(v)
        : h("span", { class: typeof v === "string" ? "mono" : "" }, v === null ? "null" : String(v)))))));
}

function taskStates(runs) {
  const out = new Map();
  for (const r of runs || []) {
    const prev = out.get(r.taskId);
    const st = r.state.current;
    if (!prev) out.set(r.taskId, { state: st, runs: 1 });
    else {
      prev.runs += 1;
      if (STATE_RANK.indexOf(st) < STATE_RANK.indexOf(prev.state)) prev.state = st;
    }
  }
  return out;
}

export function mount(root, parts) {
  const id = parts[0];
  const base = `/api/v1/executions/${encodeURIComponent(id)}`;
  const controller = new AbortController();
  const signal = controller.signal;
  const stateSlot = h("span", { id: "exec-state-slot" }, badge("CREATED", "exec-state"));
  const meta = h("div", { class: "muted", id: "exec-meta" }, "waiting for the execution…");
  const buttons = {};
  for (const [name, a] of Object.entries(ACTIONS)) {
    buttons[name] = h("button", { id: `btn-${name}`, class: a.cls || "", type: "button", disabled: true }, a.label);
  }
  const errors = h("div", { id: "exec-errors" });
  const gantt = h("div", { id: "gantt-slot" });
  const detail = h("div", { id: "taskrun-detail" });
  const outputs = h("div", { id: "exec-outputs" });
  const inputs = h("div", { id: "exec-inputs" });
  const logs = new LogView();
  let selected = null;
  const graph = graphView({
    id: "exec-topology",
    onNode: (taskId) => {
      const run = (execution?.taskRunList || []).find((r) => r.taskId === taskId);
      if (run) { showRun(run); render(); }
    },
  });
  let graphFor = null; // "namespace/flow/revision" of the drawing shown
  let graphData = null;
  let execution = null;
  let lastReload = 0;
  let reloadTimer = null;

  const panes = {
    logs: logs.element,
    topology: graph.element,
    outputs: h("div", null, outputs),
    inputs: h("div", null, inputs),
  };
  const tabBar = h("nav", { class: "tabs", id: "exec-tabs" });
  const showTab = (key) => {
    for (const a of tabBar.children) a.classList.toggle("active", a.dataset.tab === key);
    for (const [k, pane] of Object.entries(panes)) pane.hidden = k !== key;
    if (key === "topology") loadGraph().catch(showError);
  };
  for (const [key, label] of TABS) {
    tabBar.append(h("a", { href: "#", "data-tab": key, id: `tab-${key}`, onclick: (ev) => { ev.preventDefault(); showTab(key); } }, label));
  }

  const loadGraph = async () => {
    if (!execution) return;
    const key = `${execution.namespace}/${execution.flowId}/${execution.flowRevision ?? ""}`;
    if (graphFor !== key) {
      const path = `/api/v1/dashboard/flows/${encodeURIComponent(execution.namespace)}/${encodeURIComponent(execution.flowId)}/graph`;
      graphData = await get(path, { revision: execution.flowRevision }, signal);
      graphFor = key;
    }
    graph.show(graphData, taskStates(execution.taskRunList));
  };

  const showRun = (run) => {
    selected = run ? run.id : null;
    if (!run) { detail.replaceChildren(); return; }
    const attempts = run.attempts || [];
    detail.replaceChildren(h("div", { class: "panel taskrun", "data-task-run": run.id },
      h("div", { class: "taskrun-head" },
        h("h2", null, `Task run ${run.taskId}`, run.value != null ? ` [${run.value}]` : "", " ", badge(run.state.current)),
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "ghost small", id: "taskrun-logs", onclick: () => { logs.only(run, null); showTab("logs"); } }, "Logs of this task run"),
        h("button", { type: "button", class: "ghost small", onclick: () => { showRun(null); render(); } }, "Close")),
      h("div", { class: "muted" }, `${run.type} · ${run.id}${run.worker ? ` · worker ${run.worker}` : ""}` +
        ` · ${fmtDuration(run.state.durationMs)}`),
      h("h3", null, "Attempts"),
      attempts.length
        ? h("table", { class: "attempts", id: "taskrun-attempts" },
          h("thead", null, h("tr", null, ...["#", "State", "Worker", "Started", "Duration", "Error", ""].map((t) => h("th", null, t)))),
          h("tbody", null, ...attempts.map((a, i) => {
            const t = attemptTimes(a);
            return h("tr", { "data-attempt": i + 1, "data-state": a.state },
              h("td", null, `#${i + 1}`), h("td", null, badge(a.state)),
              h("td", { class: "muted" }, a.worker_id || "—"),
              h("td", null, fmtDate(t.start)), h("td", { class: "num" }, fmtDuration(t.ms)),
              h("td", { class: "error-cell" }, a.error ? h("pre", { class: "error" }, a.error) : ""),
              h("td", null, h("button", { type: "button", class: "ghost small", "data-attempt-logs": i + 1,
                onclick: () => { logs.only(run, i + 1); showTab("logs"); } }, "logs")));
          })))
        : h("div", { class: "muted" }, "none: a flowable task runs in the executor"),
      h("h3", null, "Outputs"), valueTable(run.outputs, "taskrun-outputs"),
      run.type === LOOP ? iterationsOf(run) : ""));
  };

  // A Loop (Kestra 2.0) runs each iteration as an execution of its own: list them.
  const iterationsOf = (run) => {
    const slot = h("div", { id: "loop-iterations", class: "muted" }, "loading the iterations…");
    get("/api/v1/executions/search", { parentExecutionId: execution.id, kind: "LOOP", size: 1000 }, signal)
      .then((page) => {
        const mine = page.results.filter((x) => x.loopRun && x.loopRun.taskRunId === run.id)
          .sort((a, b) => a.loopRun.index - b.loopRun.index);
        slot.className = "";
        slot.replaceChildren(mine.length
          ? h("table", { class: "attempts" },
            h("thead", null, h("tr", null, ...["#", "Value", "State", "Execution"].map((t) => h("th", null, t)))),
            h("tbody", null, ...mine.map((x) => h("tr", { "data-iteration": x.loopRun.index },
              h("td", null, String(x.loopRun.index)),
              h("td", { class: "mono" }, x.loopRun.key != null ? `${x.loopRun.key}: ${x.loopRun.value}` : x.loopRun.value),
              h("td", null, badge(x.state.current)),
              h("td", null, h("a", { href: hashFor(["executions", x.id]) }, x.id))))))
          : h("div", { class: "muted" }, "no iteration yet"));
      })
      .catch((err) => { if (err.name !== "AbortError") slot.replaceChildren(String(err.message || err)); });
    return h("div", null, h("h3", null, "Iterations"), slot);
  };

  const renderErrors = (e) => {
    const failed = [];
    for (const r of e.taskRunList || []) {
      const attempts = r.attempts || [];
      attempts.forEach((a, i) => {
        if (a.error) failed.push({ run: r, attempt: i + 1, of: attempts.length, error: a.error });
      });
    }
    if (!failed.length) { errors.replaceChildren(); return; }
    errors.replaceChildren(h("div", { class: "panel errors" },
      h("h2", null, `Errors (${failed.length})`),
      h("ul", null, ...failed.map((f) => h("li", { "data-task-id": f.run.taskId, "data-attempt": f.attempt,
        onclick: () => { showRun(f.run); render(); } },
      h("b", null, f.run.taskId), f.run.value != null ? ` [${f.run.value}]` : "",
      h("span", { class: "muted" }, ` attempt ${f.attempt} of ${f.of}: `),
      h("span", { class: "error" }, f.error))))));
  };

  const render = () => {
    const e = execution;
    const state = e.state.current;
    stateSlot.replaceChildren(badge(state, "exec-state"));
    meta.replaceChildren(
      h("a", { href: hashFor(["flows", e.namespace, e.flowId]) }, `${e.namespace} / ${e.flowId}`),
      e.flowRevision ? ` rev ${e.flowRevision}` : "",
      ` · started ${fmtDate(e.state.startDate)} · ${fmtDuration(e.state.durationMs ?? (Date.now() - new Date(e.state.startDate).getTime()))}`,
      e.originalExecutionId ? h("span", null, " · replay of ", h("a", { href: hashFor(["executions", e.originalExecutionId]) }, e.originalExecutionId)) : "",
      e.kind === "LOOP" && e.loopRun ? h("span", { id: "exec-loop" }, ` · iteration ${e.loopRun.index} (${e.loopRun.value}) of loop ${e.loopRun.taskId} in `,
        h("a", { href: hashFor(["executions", e.parentExecutionId]) }, e.parentExecutionId)) : "",
      e.labels.length ? ` · ${e.labels.map((l) => `${l.key}:${l.value}`).join(" ")}` : "");
    for (const [name, a] of Object.entries(ACTIONS)) buttons[name].disabled = !a.allowed(state);
    renderErrors(e);
    gantt.replaceChildren(renderGantt(e, selected, (run) => { showRun(run); render(); }));
    outputs.replaceChildren(valueTable(e.outputs || {}, "exec-outputs-table"));
    inputs.replaceChildren(h("h3", null, "Inputs"), valueTable(e.inputs || {}, "exec-inputs-table"),
      h("h3", null, "Trigger"), e.trigger ? json(e.trigger) : h("div", { class: "muted" }, "started by hand or by the API"));
    logs.names(e.taskRunList || []);
    if (selected) showRun((e.taskRunList || []).find((r) => r.id === selected));
    if (!graph.element.hidden && graphFor) loadGraph().catch(showError);
  };

  const reload = async () => {
    lastReload = Date.now();
    execution = await get(base, null, signal);
    render();
  };
  // Coalesce bursts of events into one reload at most every RELOAD_MIN_MS.
  const soon = () => {
    if (reloadTimer) return;
    const wait = Math.max(0, RELOAD_MIN_MS - (Date.now() - lastReload));
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      reload().catch((err) => { if (err.name !== "AbortError") showError(err); });
    }, wait);
  };

  let streaming = false;
  const stream = async () => {
    if (streaming) return;
    streaming = true;
    try {
      await followLoop();
    } finally {
      streaming = false;
    }
  };
  const followLoop = async () => {
    while (!signal.aborted) {
      try {
        for await (const ev of events(`${base}/follow`, signal)) {
          if (ev.event === "execution") {
            // The event carries the execution without task runs: show the state at once,
            // then fetch the task runs.
            if (execution) {
              execution = { ...ev.data, taskRunList: execution.taskRunList };
              render();
            }
            soon();
          } else if (ev.event === "log") logs.add(ev.data);
          else if (ev.event === "end") { await reload(); return; }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof ApiError && err.status === 404)) showError(err);
      }
      await sleep(RECONNECT_MS, signal);
    }
  };

  const appear = async () => {
    const deadline = Date.now() + APPEAR_WAIT_MS;
    for (;;) {
      try {
        await reload();
        return true;
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404) || Date.now() > deadline) throw err;
      }
      await sleep(APPEAR_POLL_MS, signal);
      if (signal.aborted) return false;
    }
  };

  for (const [name, a] of Object.entries(ACTIONS)) {
    buttons[name].addEventListener("click", async () => {
      if (name === "kill" && !confirm(`Kill execution ${id}?`)) return;
      try {
        const out = await api(a.method, `${base}/${a.path}`);
        notify(`${out.command} sent (command ${out.commandId})`, "info");
        if (out.newExecutionId) location.hash = hashFor(["executions", out.newExecutionId]);
        else soon();
        // Restart re-opens an ended execution: follow it again (a no-op while following).
        stream();
      } catch (err) {
        showError(err);
      }
    });
  }

  root.append(
    h("h1", null, "Execution ", h("span", { class: "mono", id: "exec-id" }, id), stateSlot),
    meta,
    h("div", { class: "toolbar" }, ...Object.values(buttons)),
    errors,
    h("h2", null, "Timeline"), gantt, detail,
    tabBar, ...Object.values(panes),
  );
  showTab("logs");

  appear()
    .then((ok) => ok && stream())
    .catch((err) => { if (err.name !== "AbortError") showError(err); });
  return () => {
    clearTimeout(reloadTimer);
    controller.abort();
    graph.disconnect();
  };
}
