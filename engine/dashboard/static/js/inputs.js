// The execute form: one typed field per declared input of the deployed flow (GET
// /api/v1/dashboard/flows/NS/ID/inputs), defaults filled in, required ones marked, and the
// API's per-input problems shown under their field.
//
// A field left empty is not sent: the API applies the input's default (rendering an expression
// default, as Kestra does) or reports a required input as missing. Values go as JSON in the
// types the API parses (engine/flows/input_types.py): numbers, booleans, lists, ISO text.
// A FILE input takes a file from the disk when the API creates executions from Kestra's
// multipart form (the inputs endpoint says so); the whole form then goes as multipart, every
// other value as text, typed by the API as the JSON values are. A URI of a file already in
// internal storage works either way.

import { api, get } from "./api.js";
import { h, hashFor, showError } from "./dom.js";

const EXPRESSION = /\{\{|\{%/;

function kindOf(spec) {
  const kind = String(spec.type || "STRING").toUpperCase();
  return kind === "BOOL" ? "BOOLEAN" : kind;
}

function choices(spec) {
  const values = spec.values ?? spec.options;
  if (Array.isArray(values)) return values.map(String);
  if (typeof values === "string") {
    try {
      const parsed = JSON.parse(values);
      if (Array.isArray(parsed)) return parsed.map(String);
    } catch {
      // an expression: the API renders it; nothing to offer here
    }
  }
  return null;
}

function asList(value) {
  if (Array.isArray(value)) return value;
  if (typeof value === "string") {
    try {
      const parsed = JSON.parse(value);
      if (Array.isArray(parsed)) return parsed;
    } catch {
      return value.split(",").map((v) => v.trim()).filter(Boolean);
    }
  }
  return value === undefined || value === null ? [] : [value];
}

const pad = (n) => String(n).padStart(2, "0");

// An ISO instant -> the value of a datetime-local field, in this browser's time zone.
function localDateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// One field: {element, read() -> {set, value} | {error}, showError(text)}.
function field(spec, { fileUploads }) {
  const kind = kindOf(spec);
  const id = String(spec.id);
  const dflt = spec.defaults;
  const expressionDefault = typeof dflt === "string" && EXPRESSION.test(dflt);
  const hasDefault = dflt !== undefined && dflt !== null;
  const required = spec.required !== false && !hasDefault;
  const initial = hasDefault && !expressionDefault ? dflt : undefined;
  const name = `input-${id}`;
  let control;
  let read;

  const text = (type, attrs = {}) => {
    control = h("input", { type, id: name, name, ...attrs, value: initial !== undefined ? String(initial) : undefined });
    read = () => (control.value === "" ? { set: false } : { set: true, value: control.value });
  };

  switch (kind) {
    case "INT":
    case "FLOAT": {
      text("number", { step: kind === "INT" ? "1" : "any", min: spec.min ?? undefined, max: spec.max ?? undefined });
      read = () => {
        if (control.value === "") return control.validity.badInput ? { error: `a number is expected` } : { set: false };
        const n = Number(control.value);
        if (kind === "INT" && !Number.isInteger(n)) return { error: "a whole number is expected" };
        return { set: true, value: n };
      };
      break;
    }
    case "BOOLEAN": {
      const current = initial === undefined ? "" : String(initial).toLowerCase();
      control = h("select", { id: name, name },
        required || hasDefault ? null : h("option", { value: "" }, "— not set —"),
        required && initial === undefined ? h("option", { value: "", disabled: true, selected: true }, "choose…") : null,
        h("option", { value: "true", selected: current === "true" }, "true"),
        h("option", { value: "false", selected: current === "false" }, "false"));
      read = () => (control.value === "" ? { set: false } : { set: true, value: control.value === "true" });
      break;
    }
    case "SELECT":
    case "ENUM": {
      const values = choices(spec);
      if (values && !spec.allowCustomValue) {
        control = h("select", { id: name, name },
          h("option", { value: "", selected: initial === undefined }, required ? "choose…" : "— not set —"),
          ...values.map((v) => h("option", { value: v, selected: initial !== undefined && String(initial) === v }, v)));
        read = () => (control.value === "" ? { set: false } : { set: true, value: control.value });
      } else {
        const list = h("datalist", { id: `${name}-values` }, ...(values || []).map((v) => h("option", { value: v })));
        text("text", { list: `${name}-values` });
        control = h("span", null, control, list);
        const input = control.firstChild;
        read = () => (input.value === "" ? { set: false } : { set: true, value: input.value });
      }
      break;
    }
    case "MULTISELECT": {
      const values = choices(spec) || [];
      const picked = new Set(asList(initial).map(String));
      const boxes = values.map((v) => h("label", { class: "check" },
        h("input", { type: "checkbox", value: v, checked: picked.has(v), "data-value": v }), v));
      const other = spec.allowCustomValue || !values.length
        ? h("input", { type: "text", class: "other", placeholder: values.length ? "other values, comma separated" : "values, comma separated" })
        : null;
      control = h("div", { class: "multi", id: name }, ...boxes, other);
      read = () => {
        const chosen = boxes.map((b) => b.firstChild).filter((b) => b.checked).map((b) => b.value);
        if (other && other.value.trim()) chosen.push(...other.value.split(",").map((v) => v.trim()).filter(Boolean));
        const touched = chosen.length || boxes.some((b) => b.firstChild.checked !== picked.has(b.firstChild.value));
        return touched || initial !== undefined ? { set: true, value: chosen } : { set: false };
      };
      break;
    }
    case "DATE":
      text("date");
      break;
    case "TIME":
      text("time", { step: "1" });
      break;
    case "DATETIME": {
      control = h("input", { type: "datetime-local", id: name, name, step: "1", value: initial !== undefined ? localDateTime(initial) : undefined });
      read = () => {
        if (control.value === "") return { set: false };
        const d = new Date(control.value); // local time, as shown
        return Number.isNaN(d.getTime()) ? { error: "a date and time is expected" } : { set: true, value: d.toISOString() };
      };
      break;
    }
    case "JSON":
    case "YAML": {
      const shown = initial === undefined ? "" : typeof initial === "string" ? initial : JSON.stringify(initial, null, 2);
      control = h("textarea", { id: name, name, rows: 4, spellcheck: "false", class: "mono" }, shown);
      read = () => {
        if (!control.value.trim()) return { set: false };
        if (kind === "JSON") {
          try {
            return { set: true, value: JSON.parse(control.value) };
          } catch (err) {
            return { error: `not valid JSON: ${err.message}` };
          }
        }
        return { set: true, value: control.value };
      };
      break;
    }
    case "ARRAY": {
      control = h("textarea", { id: name, name, rows: 3, spellcheck: "false", placeholder: "one item per line" },
        asList(initial).map(String).join("\n"));
      read = () => {
        const items = control.value.split("\n").map((v) => v.trim()).filter(Boolean);
        return items.length ? { set: true, value: items } : { set: false };
      };
      break;
    }
    case "SECRET":
      text("password", { autocomplete: "off" });
      break;
    case "EMAIL":
      text("email");
      break;
    case "URI":
      text("url", { placeholder: "https://…" });
      break;
    case "DURATION":
      text("text", { placeholder: "ISO-8601 duration, e.g. PT5M" });
      break;
    case "FILE": {
      text("text", { placeholder: fileUploads ? "or the kestra:///… URI of a file in internal storage" : "kestra:///… URI of a file in internal storage" });
      const uri = control;
      const upload = h("input", { type: "file", disabled: !fileUploads, title: "a file to upload", class: "upload" });
      control = h("span", { class: "file" }, upload, uri);
      read = () => {
        if (upload.files && upload.files.length) return { set: true, file: upload.files[0] };
        return uri.value === "" ? { set: false } : { set: true, value: uri.value };
      };
      break;
    }
    default:
      text("text");
  }

  const error = h("div", { class: "field-error", hidden: true });
  const notes = [];
  if (expressionDefault) notes.push(`default: ${dflt} (rendered when the execution starts)`);
  if (kind === "DATETIME") notes.push("in your time zone; sent as UTC");
  if (kind === "FILE" && !fileUploads) {
    notes.push("Uploading needs the API's multipart execution creation, which this server does not offer yet: give the URI of a file already in internal storage.");
  }
  if (spec.validator) notes.push(`must match ${spec.validator}`);
  if (spec.min !== undefined && spec.min !== null) notes.push(`min ${spec.min}`);
  if (spec.max !== undefined && spec.max !== null) notes.push(`max ${spec.max}`);
  const element = h("div", { class: "field", "data-input": id, "data-type": kind },
    h("label", { for: name, class: "field-label" },
      spec.displayName || id,
      required ? h("span", { class: "required", title: "required" }, "*") : null,
      h("span", { class: "type-tag" }, kind)),
    spec.description ? h("div", { class: "muted small" }, spec.description) : null,
    control,
    notes.length ? h("div", { class: "muted small note" }, notes.join(" · ")) : null,
    error);
  return {
    id,
    element,
    read,
    showError(message) {
      error.textContent = message || "";
      error.hidden = !message;
      element.classList.toggle("invalid", !!message);
    },
  };
}

// Build the form for these inputs: {element, collect() -> {inputs} | null, show(problems)}.
export function inputForm(specs, options) {
  const fields = specs.map((spec) => field(spec, options));
  const byId = new Map(fields.map((f) => [f.id, f]));
  const element = h("div", { class: "input-form", id: "input-form" },
    fields.length ? fields.map((f) => f.element) : h("p", { class: "muted", id: "no-inputs" }, "This flow declares no inputs."));
  return {
    element,
    // {inputs, files} (files: input id -> File), or null when a field is wrong here already.
    collect() {
      const inputs = {};
      const files = {};
      let ok = true;
      for (const f of fields) {
        const r = f.read();
        f.showError(r.error || "");
        if (r.error) ok = false;
        else if (r.file) files[f.id] = r.file;
        else if (r.set) inputs[f.id] = r.value;
      }
      return ok ? { inputs, files } : null;
    },
    // The API's 422 errors: [{input, message, expected}]; returns those no field took.
    show(problems) {
      const rest = [];
      for (const f of fields) f.showError("");
      for (const p of problems || []) {
        const f = byId.get(p.input);
        if (f) f.showError(p.expected ? `${p.message} (expected ${p.expected})` : p.message);
        else rest.push(p);
      }
      return rest;
    },
  };
}

// The request body: JSON, or Kestra's multipart form when there are files to upload.
function body({ inputs, files }) {
  if (!Object.keys(files).length) return { json: { inputs } };
  const form = new FormData();
  for (const [id, value] of Object.entries(inputs)) {
    form.append(id, typeof value === "string" ? value : JSON.stringify(value));
  }
  for (const [id, file] of Object.entries(files)) form.append(id, file, file.name);
  return { form };
}

// A revision just deployed reaches the read model a projection hop later: wait this long.
const REVISION_WAIT_MS = 15000;
const REVISION_POLL_MS = 300;

// The inputs of `revision` or a later one (the page may have just deployed it).
async function inputsOf(path, revision) {
  const deadline = Date.now() + REVISION_WAIT_MS;
  for (;;) {
    const info = await get(`/api/v1/dashboard/flows/${path}/inputs`);
    if (!revision || info.revision >= revision || Date.now() > deadline) return info;
    await new Promise((resolve) => setTimeout(resolve, REVISION_POLL_MS));
  }
}

// The dialog: load the deployed flow's inputs, then start an execution and open it.
export async function openExecuteDialog(namespace, flowId, revision) {
  const path = `${encodeURIComponent(namespace)}/${encodeURIComponent(flowId)}`;
  let info;
  try {
    info = await inputsOf(path, revision);
  } catch (err) {
    showError(err);
    return;
  }
  const form = inputForm(info.inputs, { fileUploads: info.fileUploads });
  const message = h("div", { class: "form-error", id: "execute-error", hidden: true });
  const go = h("button", { type: "submit", id: "execute-submit" }, "Execute");
  const cancel = h("button", { type: "button", class: "ghost", id: "execute-cancel" }, "Cancel");
  const dialog = h("dialog", { id: "execute-dialog", class: "wide" },
    h("form", { method: "dialog", id: "execute-form", novalidate: true },
      h("h3", null, `Execute ${namespace} / ${flowId}`, h("span", { class: "muted" }, ` revision ${info.revision}`)),
      form.element, message, h("div", { class: "actions" }, cancel, go)));
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  cancel.addEventListener("click", close);
  dialog.addEventListener("cancel", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    message.hidden = true;
    const given = form.collect();
    if (!given) return;
    go.disabled = true;
    try {
      const created = await api("POST", `/api/v1/executions/${path}`, body(given));
      close();
      location.hash = hashFor(["executions", created.id]);
    } catch (err) {
      const rest = err.problem ? form.show(err.problem.errors) : [err];
      if (rest.length || !err.problem || !err.problem.errors) {
        message.textContent = err.problem ? `${err.problem.title}: ${err.problem.detail || ""}` : String(err);
        message.hidden = false;
      }
    } finally {
      go.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector("input, select, textarea");
  if (first) first.focus();
}
