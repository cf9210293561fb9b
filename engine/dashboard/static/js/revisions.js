// A flow's revisions: the list (newest first), any two side by side as a diff (CodeMirror's
// merge view, loaded with the editor bundle), and restoring an old one as a new revision.

import { ApiError, api, get } from "./api.js";
import { every, fmtDate, h, hashFor, notify, showError } from "./dom.js";

// Another deploy (a colleague, CI, the editor tab) shows up within this long.
const REFRESH_MS = 3000;

function countChanges(a, b) {
  // Lines only in one side (a multiset difference): a quick "+x −y" for the header.
  const count = (text) => {
    const m = new Map();
    for (const line of text.split("\n")) m.set(line, (m.get(line) || 0) + 1);
    return m;
  };
  const ca = count(a);
  const cb = count(b);
  let added = 0;
  let removed = 0;
  for (const [line, n] of cb) added += Math.max(0, n - (ca.get(line) || 0));
  for (const [line, n] of ca) removed += Math.max(0, n - (cb.get(line) || 0));
  return { added, removed };
}

export function mountRevisions(root, namespace, flowId, revisionSlot) {
  const base = `/api/v1/dashboard/flows/${encodeURIComponent(namespace)}/${encodeURIComponent(flowId)}/revisions`;
  const controller = new AbortController();
  const sources = new Map();
  const list = h("tbody");
  const header = h("div", { class: "diff-head", id: "diff-head" });
  const host = h("div", { class: "diff", id: "revision-diff" });
  const restore = h("button", { type: "button", class: "ghost", id: "revision-restore", hidden: true });
  let diff = null;
  let revisions = [];
  let current = null;
  let pick = { a: null, b: null };

  const source = async (revision) => {
    if (!sources.has(revision)) {
      sources.set(revision, get(`${base}/${revision}`, null, controller.signal).then((r) => r.source));
    }
    return sources.get(revision);
  };

  const show = async () => {
    for (const row of list.children) {
      const rev = Number(row.dataset.revision);
      row.querySelector("input[name=rev-a]").checked = rev === pick.a;
      row.querySelector("input[name=rev-b]").checked = rev === pick.b;
      row.classList.toggle("selected", rev === pick.a || rev === pick.b);
    }
    const [a, b] = await Promise.all([source(pick.a), source(pick.b)]);
    if (controller.signal.aborted) return;
    const { createDiff } = await import("../editor/diff.js");
    if (diff) diff.destroy();
    host.replaceChildren();
    const { added, removed } = countChanges(a, b);
    header.replaceChildren(
      h("b", null, `revision ${pick.a}`), " → ", h("b", null, `revision ${pick.b}`),
      h("span", { class: "muted", id: "diff-stats" }, ` · +${added} −${removed} lines`),
      pick.a === pick.b ? h("span", { class: "muted" }, " (the same revision)") : "");
    diff = createDiff({ parent: host, a, b });
    host.hwDiff = diff; // the browser tests read the number of changes here
    restore.hidden = pick.a === current;
    restore.textContent = `Restore revision ${pick.a}`;
  };

  const row = (r) => h("tr", { "data-revision": r.revision },
    h("td", null, h("input", { type: "radio", name: "rev-a", title: "compare from", onchange: () => { pick.a = r.revision; defaults = false; show().catch(showError); } })),
    h("td", null, h("input", { type: "radio", name: "rev-b", title: "compare to", onchange: () => { pick.b = r.revision; defaults = false; show().catch(showError); } })),
    h("td", { class: "num" }, r.revision, r.revision === current ? h("span", { class: "badge on current" }, "current") : null),
    h("td", null, fmtDate(r.deployedAt)),
    h("td", { class: "num muted" }, `${r.lines} lines`));

  restore.addEventListener("click", async () => {
    const rev = pick.a;
    if (!confirm(`Deploy revision ${rev} again as a new revision of ${namespace}/${flowId}?`)) return;
    try {
      const flow = await api("POST", "/api/v1/flows", { yaml: await source(rev) });
      notify(`Restored revision ${rev} as revision ${flow.revision}`, "info");
      revisionSlot.textContent = ` revision ${flow.revision}`;
      defaults = true; // show what the restore changed once it is listed
    } catch (err) {
      showError(err);
    }
  });

  // The list, refreshed: a new revision moves the default comparison (newest against the one
  // before) along; a comparison the user picked stays.
  let defaults = true;
  const load = async () => {
    let out;
    try {
      out = await get(base, null, controller.signal);
    } catch (err) {
      // A flow deployed a moment ago reaches the read model a projection hop later.
      if (err instanceof ApiError && err.status === 404 && !revisions.length) return;
      throw err;
    }
    if (out.current !== null) revisionSlot.textContent = ` revision ${out.current}`;
    const changed = out.revisions.length !== revisions.length || out.current !== current;
    revisions = out.revisions;
    current = out.current;
    if (!changed) return;
    list.replaceChildren(...revisions.map(row));
    if (defaults || !pick.a) pick = { b: revisions[0].revision, a: (revisions[1] || revisions[0]).revision };
    await show();
  };

  root.append(
    h("div", { class: "revisions-grid" },
      h("div", null,
        h("table", { id: "revisions-table" },
          h("thead", null, h("tr", null, ...["From", "To", "Rev", "Deployed", "Size"].map((t) => h("th", null, t)))),
          list),
        h("p", { class: "muted small" }, "Pick two revisions to compare; the left side of the diff is “From”."),
        restore,
        h("p", null, h("a", { href: hashFor(["flows", namespace, flowId]) }, "Back to the editor"))),
      h("div", null, header, host)),
  );
  const stop = every(REFRESH_MS, load);
  return () => {
    stop();
    controller.abort();
    if (diff) diff.destroy();
  };
}
