// Namespaces: the list (from the deployed flows), and one namespace's flows, files and KV pairs.
// Files use the API's /api/v1/namespaces/NS/files routes (Kestra's): browse folders, read a
// file, upload, make a folder, delete. KV pairs are read from hw.kv by the dashboard's route.

import { ApiError, api, get, token } from "./api.js";
import { fmtDate, h, hashFor, json, notify, showError } from "./dom.js";

// A file larger than this is not shown inline (download it instead).
const SHOW_MAX_BYTES = 256 * 1024;
const TABS = [["flows", "Flows"], ["files", "Files"], ["kv", "KV store"]];

export function mountList(root) {
  const body = h("tbody");
  root.append(h("h1", null, "Namespaces"),
    h("table", { id: "namespaces-table" },
      h("thead", null, h("tr", null, h("th", null, "Namespace"), h("th", { class: "num" }, "Flows"))),
      body));
  get("/api/v1/dashboard/namespaces").then((out) => {
    body.replaceChildren(...out.namespaces.map((n) => h("tr", { "data-namespace": n.namespace },
      h("td", null, h("a", { href: hashFor(["namespaces", n.namespace]) }, n.namespace)),
      h("td", { class: "num" }, n.flows))));
    if (!out.namespaces.length) body.append(h("tr", null, h("td", { colspan: 2, class: "empty" }, "No flows deployed yet.")));
  }).catch(showError);
  return null;
}

function filesBase(namespace) {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/files`;
}

function join(dir, name) {
  return `${dir.replace(/\/$/, "")}/${name}`;
}

function fmtSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// The Files tab: a folder's entries, a file's content, and the actions.
function filesPane(namespace, available) {
  const pane = h("div", { id: "ns-files" });
  if (!available) {
    pane.append(h("p", { class: "muted", id: "ns-files-missing" },
      "This server does not serve namespace files (no /api/v1/namespaces/{namespace}/files routes)."));
    return { element: pane, load: async () => {} };
  }
  const base = filesBase(namespace);
  let dir = "/";
  const crumbs = h("div", { class: "crumbs", id: "ns-files-path" });
  const body = h("tbody");
  const viewer = h("div", { id: "ns-file-view" });
  const upload = h("input", { type: "file", id: "ns-file-upload" });
  const folderName = h("input", { type: "text", id: "ns-folder-name", placeholder: "new folder name", size: 18 });
  const makeFolder = h("button", { type: "button", class: "ghost", id: "ns-folder-create" }, "Create folder");

  const open = async (path) => {
    const res = await fetch(`${base}?path=${encodeURIComponent(path)}`, { headers: authHeaders() });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({ title: res.statusText })));
    const size = Number(res.headers.get("content-length") || 0);
    const bytes = new Uint8Array(await res.arrayBuffer());
    let text = null;
    if (size <= SHOW_MAX_BYTES) {
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        text = null; // binary
      }
    }
    viewer.replaceChildren(h("div", { class: "panel" },
      h("h3", null, path, h("span", { class: "muted" }, ` · ${fmtSize(bytes.length)}`)),
      text !== null ? h("pre", { class: "json", id: "ns-file-content" }, text)
        : h("p", { class: "muted" }, "Binary or large file: not shown.")));
  };

  const remove = async (path) => {
    if (!confirm(`Delete ${path} from ${namespace}?`)) return;
    await api("DELETE", base, { query: { path } });
    notify(`Deleted ${path}`, "info");
    viewer.replaceChildren();
    await load();
  };

  const row = (e) => {
    const path = join(dir, e.fileName);
    const isDir = e.type === "Directory";
    return h("tr", { "data-path": path, "data-type": e.type },
      h("td", null, h("a", { href: "#", class: isDir ? "folder" : "file",
        onclick: (ev) => {
          ev.preventDefault();
          if (isDir) { dir = path; viewer.replaceChildren(); load().catch(showError); } else open(path).catch(showError);
        } }, isDir ? `${e.fileName}/` : e.fileName)),
      h("td", { class: "num muted" }, isDir ? "" : fmtSize(e.size)),
      h("td", { class: "muted" }, fmtDate(new Date(e.lastModifiedTime).toISOString())),
      h("td", null, h("button", { type: "button", class: "ghost small", "data-delete": path,
        onclick: () => remove(path).catch(showError) }, "Delete")));
  };

  const load = async () => {
    const entries = await get(`${base}/directory`, { path: dir });
    const parts = dir.split("/").filter(Boolean);
    crumbs.replaceChildren(h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); dir = "/"; load().catch(showError); } }, namespace),
      ...parts.flatMap((p, i) => [" / ", h("a", { href: "#", onclick: (ev) => {
        ev.preventDefault(); dir = `/${parts.slice(0, i + 1).join("/")}`; load().catch(showError);
      } }, p)]));
    body.replaceChildren(...entries.map(row));
    if (!entries.length) body.append(h("tr", null, h("td", { colspan: 4, class: "empty" }, "No files here yet.")));
  };

  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("fileContent", file, file.name);
    try {
      await api("POST", base, { form, query: { path: join(dir, file.name) } });
      notify(`Uploaded ${join(dir, file.name)}`, "info");
      upload.value = "";
      await load();
    } catch (err) {
      showError(err);
    }
  });
  makeFolder.addEventListener("click", async () => {
    const name = folderName.value.trim();
    if (!name) return;
    try {
      await api("POST", `${base}/directory`, { query: { path: join(dir, name) } });
      folderName.value = "";
      await load();
    } catch (err) {
      showError(err);
    }
  });

  pane.append(crumbs,
    h("div", { class: "toolbar" }, h("label", null, "Upload a file ", upload), folderName, makeFolder),
    h("table", { id: "ns-files-table" },
      h("thead", null, h("tr", null, ...["Name", "Size", "Modified", ""].map((t) => h("th", null, t)))), body),
    viewer);
  return { element: pane, load };
}

function authHeaders() {
  return token() ? { Authorization: `Bearer ${token()}` } : {};
}

function kvPane(namespace) {
  const body = h("tbody");
  const pane = h("div", { id: "ns-kv" },
    h("p", { class: "muted small" }, "Pairs written by kv.Set tasks (read from the KV store now; expired ones are left out)."),
    h("table", { id: "ns-kv-table" },
      h("thead", null, h("tr", null, h("th", null, "Key"), h("th", null, "Value"))), body));
  const load = async () => {
    const out = await get(`/api/v1/dashboard/namespaces/${encodeURIComponent(namespace)}/kv`);
    body.replaceChildren(...out.entries.map((e) => h("tr", { "data-key": e.key },
      h("td", { class: "mono" }, e.key),
      h("td", null, e.value !== null && typeof e.value === "object" ? json(e.value) : h("span", { class: "mono" }, JSON.stringify(e.value))))));
    if (!out.entries.length) body.append(h("tr", null, h("td", { colspan: 2, class: "empty" }, "No keys in this namespace.")));
  };
  return { element: pane, load };
}

function flowsPane(namespace) {
  const body = h("tbody");
  const pane = h("div", { id: "ns-flows" }, h("table", { id: "ns-flows-table" },
    h("thead", null, h("tr", null, ...["Flow", "Rev", "Description", "Updated"].map((t) => h("th", null, t)))), body));
  const load = async () => {
    const page = await get("/api/v1/flows/search", { namespace, size: 1000 });
    const own = page.results.filter((f) => f.namespace === namespace);
    body.replaceChildren(...own.map((f) => h("tr", { "data-flow": f.id },
      h("td", null, h("a", { href: hashFor(["flows", f.namespace, f.id]) }, f.id)),
      h("td", { class: "num" }, f.revision), h("td", { class: "muted" }, f.description || ""),
      h("td", null, fmtDate(f.updated)))));
    if (!own.length) body.append(h("tr", null, h("td", { colspan: 4, class: "empty" }, "No flows in this namespace.")));
  };
  return { element: pane, load };
}

// #/namespaces/NS and #/namespaces/NS/files|kv
export function mountNamespace(root, parts) {
  const [namespace, tab = "flows"] = parts;
  const tabs = h("nav", { class: "tabs", id: "ns-tabs" },
    ...TABS.map(([key, label]) => h("a", {
      href: hashFor(key === "flows" ? ["namespaces", namespace] : ["namespaces", namespace, key]),
      class: key === tab ? "active" : "", "data-tab": key,
    }, label)));
  const slot = h("div");
  root.append(h("h1", null, h("a", { href: "#/namespaces" }, "Namespaces"), " / ", namespace), tabs, slot);
  const show = async () => {
    let pane;
    if (tab === "files") {
      const info = await get("/api/v1/dashboard/namespaces");
      pane = filesPane(namespace, info.files);
    } else if (tab === "kv") pane = kvPane(namespace);
    else pane = flowsPane(namespace);
    slot.replaceChildren(pane.element);
    await pane.load();
  };
  show().catch(showError);
  return null;
}
