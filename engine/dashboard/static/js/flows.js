// Flows: the list, and one flow's page: the YAML editor (CodeMirror, with completion and hover
// docs from the flow schema and the API's problems inline) beside its live topology, the typed
// execute form, and the revisions with a diff.

import { ApiError, api, get } from "./api.js";
import { every, fmtDate, h, hashFor, notify, showError } from "./dom.js";
import { openExecuteDialog } from "./inputs.js";
import { mountRevisions } from "./revisions.js";
import { graphView } from "./topology.js";

const LIST_REFRESH_MS = 5000;
const APPEAR_WAIT_MS = 15000;
const APPEAR_POLL_MS = 300;

const NEW_FLOW = `id: hello
namespace: company.team

inputs:
  - id: name
    type: STRING
    defaults: world

tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.name }}"
  - id: done
    type: io.kestra.plugin.core.debug.Return
    format: "greeted {{ inputs.name }}"
`;

export function mountList(root) {
  const q = h("input", { id: "flow-search", placeholder: "flow id contains…", size: 24 });
  const ns = h("input", { id: "flow-namespace", placeholder: "namespace", size: 20 });
  const body = h("tbody");
  const more = h("button", { class: "ghost", hidden: true }, "More");
  let cursor = null;

  const row = (f) =>
    h("tr", { "data-flow": `${f.namespace}/${f.id}` },
      h("td", null, f.namespace),
      h("td", null, h("a", { href: hashFor(["flows", f.namespace, f.id]) }, f.id)),
      h("td", { class: "num" }, f.revision),
      h("td", { class: "muted" }, f.description || ""),
      h("td", null, fmtDate(f.updated)),
      h("td", null, h("a", { href: hashFor(["executions"], { namespace: f.namespace, flowId: f.id }) }, "executions")));

  const load = async (append) => {
    const page = await get("/api/v1/flows/search", {
      q: q.value.trim(), namespace: ns.value.trim(), size: 100, cursor: append ? cursor : null,
    });
    if (!append) body.replaceChildren();
    body.append(...page.results.map(row));
    if (!body.children.length) body.append(h("tr", null, h("td", { colspan: 6, class: "empty" }, "No flows yet: create one.")));
    cursor = page.nextCursor;
    more.hidden = !cursor;
  };
  const reload = () => load(false).catch(showError);
  q.addEventListener("input", reload);
  ns.addEventListener("input", reload);
  more.addEventListener("click", () => load(true).catch(showError));

  root.append(
    h("h1", null, "Flows"),
    h("div", { class: "toolbar" }, q, ns, h("span", { class: "spacer" }),
      h("a", { href: "#/flows/new" }, h("button", { id: "flow-new", type: "button" }, "New flow"))),
    h("table", { id: "flows-table" },
      h("thead", null, h("tr", null, ...["Namespace", "Flow", "Rev", "Description", "Updated", ""].map((t) => h("th", null, t)))),
      body),
    more,
  );
  // Flows change rarely: refresh the first page now and then, not on every keystroke of others.
  return every(LIST_REFRESH_MS, () => (cursor ? null : load(false)));
}


// A flow just deployed reaches the read model a projection hop later: retry a 404 briefly.
async function loadFlow(namespace, flowId, signal) {
  const path = `/api/v1/flows/${encodeURIComponent(namespace)}/${encodeURIComponent(flowId)}`;
  const deadline = Date.now() + APPEAR_WAIT_MS;
  for (;;) {
    try {
      return await get(path, null, signal);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404) || Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, APPEAR_POLL_MS));
  }
}

const TABS = [["editor", "Editor"], ["revisions", "Revisions"]];

// One flow: #/flows/new, #/flows/NS/ID (the editor) or #/flows/NS/ID/revisions.
export function mountFlow(root, parts) {
  const isNew = parts[0] === "new";
  const [namespace, flowId, tab = "editor"] = isNew ? [null, null, "editor"] : parts;
  const title = h("h1", null, isNew ? "New flow" : `${namespace} / ${flowId}`,
    h("span", { class: "muted", id: "flow-revision" }));
  root.append(title);
  if (!isNew) {
    root.append(h("nav", { class: "tabs", id: "flow-tabs" },
      ...TABS.map(([key, label]) => h("a", {
        href: hashFor(key === "editor" ? ["flows", namespace, flowId] : ["flows", namespace, flowId, key]),
        class: key === tab ? "active" : "", "data-tab": key,
      }, label)),
      h("a", { href: hashFor(["executions"], { namespace, flowId }) }, "Executions")));
  }
  const body = h("div");
  root.append(body);
  if (tab === "revisions") return mountRevisions(body, namespace, flowId, title.lastChild);
  return mountEditor(body, { isNew, namespace, flowId, revisionSlot: title.lastChild });
}

function problemItem(p, kind, onPick) {
  return h("li", { class: kind, onclick: () => onPick(p), "data-line": p.line, "data-kind": kind },
    h("span", { class: "where" }, `line ${p.line}, col ${p.column}`),
    p.path ? h("code", null, `${p.path}: `) : null,
    p.message,
    p.expected ? h("span", { class: "muted" }, ` (expected ${p.expected})`) : null);
}

function mountEditor(root, { isNew, namespace, flowId, revisionSlot }) {
  const controller = new AbortController();
  const host = h("div", { class: "editor", id: "flow-editor" }, h("p", { class: "muted pad" }, "Loading the editor…"));
  const status = h("span", { id: "flow-status", class: "muted" }, "");
  const dirty = h("span", { id: "flow-dirty", class: "muted", hidden: true }, "● unsaved changes");
  const problems = h("ul", { class: "problems", id: "flow-problems" });
  const graphNote = h("span", { class: "muted", id: "topology-note" });
  const view = graphView({ id: "topology" });
  const save = h("button", { id: "flow-save", type: "button", title: "Deploy (Ctrl+S)" }, isNew ? "Create" : "Save");
  const run = h("button", { id: "flow-execute", type: "button", disabled: isNew }, "Execute");
  let editor = null;
  let saved = null; // the source as deployed
  let deployed = null; // its revision

  const onCheck = (result, text, err) => {
    if (err) {
      if (err.name !== "AbortError") showError(err);
      return;
    }
    if (!editor || text !== editor.getValue()) return; // a newer edit is on its way
    const pick = (p) => editor.reveal(p.line, p.column);
    problems.replaceChildren(
      ...result.problems.map((p) => problemItem(p, "error", pick)),
      ...result.warnings.map((p) => problemItem(p, "warning", pick)));
    const n = result.problems.length;
    const w = result.warnings.length;
    const warned = w ? ` · ${w} warning${w === 1 ? "" : "s"}` : "";
    status.className = result.valid ? "valid" : "invalid";
    status.textContent = result.valid
      ? `✓ valid (${result.namespace}/${result.id})${warned}`
      : `✗ ${n} problem${n === 1 ? "" : "s"}${warned}`;
    // An invalid flow keeps the last valid drawing, dimmed, rather than an empty box.
    view.stale(!result.valid);
    graphNote.textContent = result.valid ? "" : "(last valid version)";
    if (result.valid && result.graph) view.show(result.graph);
  };

  const deploy = async () => {
    if (!editor) return;
    try {
      const flow = await api("POST", "/api/v1/flows", { yaml: editor.getValue() });
      notify(`Deployed ${flow.namespace}/${flow.id} revision ${flow.revision}`, "info");
      saved = editor.getValue();
      deployed = flow.revision;
      dirty.hidden = true;
      if (isNew || flow.namespace !== namespace || flow.id !== flowId) {
        location.hash = hashFor(["flows", flow.namespace, flow.id]);
      } else {
        revisionSlot.textContent = ` revision ${flow.revision}`;
      }
    } catch (err) {
      showError(err);
      editor.recheck();
    }
  };
  save.addEventListener("click", deploy);
  run.addEventListener("click", () => {
    if (saved !== null && editor && editor.getValue() !== saved) {
      notify("The editor has unsaved changes: the execution runs the deployed revision.", "info");
    }
    openExecuteDialog(namespace, flowId, deployed);
  });

  root.append(
    h("div", { class: "toolbar" }, save, run, status, dirty),
    h("div", { class: "editor-grid" },
      h("div", null, host, problems,
        h("p", { class: "muted hint" }, "Ctrl+Space completes keys, task types and {{ expressions }}; hover a key for its documentation; Ctrl+S deploys.")),
      h("div", null, h("h2", null, "Topology ", graphNote), view.element)),
  );

  const start = async () => {
    let source = NEW_FLOW;
    if (!isNew) {
      const flow = await loadFlow(namespace, flowId, controller.signal);
      source = flow.source;
      saved = source;
      deployed = flow.revision;
      revisionSlot.textContent = ` revision ${flow.revision}`;
    }
    const { createFlowEditor } = await import("../editor/editor.js");
    if (controller.signal.aborted) return;
    host.replaceChildren();
    editor = createFlowEditor({
      parent: host,
      doc: source,
      loadSchema: () => get("/api/v1/dashboard/schemas/flow"),
      check: (text) => api("POST", "/api/v1/dashboard/flows/check", { yaml: text, signal: controller.signal }),
      onCheck,
      onSave: deploy,
      onChange: (text) => { dirty.hidden = saved === null || text === saved; },
    });
    host.hwEditor = editor; // the browser tests drive the editor through this
  };
  start().catch(showError);
  return () => {
    controller.abort();
    view.disconnect();
    if (editor) editor.destroy();
  };
}
