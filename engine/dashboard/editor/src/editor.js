// The flow editor of the dashboard: CodeMirror 6 with YAML highlighting, completion and hover
// docs from Headwater's flow JSON Schema, and the API's located problems inline.
//
//   const editor = createFlowEditor({parent, doc, loadSchema, check, onCheck, onSave});
//
// `loadSchema()` resolves to the schema (GET /api/v1/dashboard/schemas/flow); `check(text)`
// resolves to {problems, warnings} (POST /api/v1/dashboard/flows/check), called after each
// pause in typing; `onCheck(result, text)` gets every answer (the page draws its status and
// topology from it). The returned object is what the page (and the browser tests) use.

import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, foldGutter, foldKeymap, indentOnInput, indentUnit } from "@codemirror/language";
import { forceLinting, lintGutter, lintKeymap, linter } from "@codemirror/lint";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { EditorState } from "@codemirror/state";
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  hoverTooltip,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { expressionOptions } from "./expressions.js";
import { FlowSchema, hoverKey, hoverType, itemValueOptions, keyOptions, valueOptions } from "./schema.js";
import { yamlSupport } from "./setup.js";
import { PROBE, contextAt, parse, tokenAt } from "./yamltree.js";

// Wait this long after the last keystroke before asking the API (one request per pause).
const CHECK_DELAY_MS = 350;

function el(tag, cls, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

// The documentation of a key or a type, as a tooltip or a completion's info panel.
function docNode(doc) {
  const out = el("div", "hw-doc");
  out.append(el("div", "hw-doc-head", el("b", null, String(doc.key)), doc.type ? el("code", null, doc.type) : null,
    doc.required ? el("span", "hw-doc-required", "required") : null));
  if (doc.title) out.append(el("div", "hw-doc-title", doc.title));
  if (doc.description) out.append(el("p", null, doc.description));
  if (doc.default !== undefined) out.append(el("div", "hw-doc-more", "default: ", el("code", null, JSON.stringify(doc.default))));
  if (doc.values) out.append(el("div", "hw-doc-more", "values: ", el("code", null, doc.values.map(String).join(", "))));
  if (doc.properties && doc.properties.length) {
    const required = new Set(doc.requiredProperties || []);
    out.append(el("div", "hw-doc-more", "properties: ",
      ...doc.properties.map((p, i) => el("span", required.has(p) ? "hw-doc-required" : null, (i ? ", " : "") + p))));
  }
  return out;
}

function toDiagnostic(doc, problem, severity) {
  const lineNo = Math.min(Math.max(1, problem.line || 1), doc.lines);
  const line = doc.line(lineNo);
  const from = Math.min(line.from + Math.max(0, (problem.column || 1) - 1), line.to);
  const word = /^[^\s:,\]}]+/.exec(doc.sliceString(from, line.to));
  const to = word ? from + word[0].length : line.to;
  const where = problem.path ? `${problem.path}: ` : "";
  const expected = problem.expected ? ` (expected ${problem.expected})` : "";
  return { from, to, severity, source: "headwater", message: `${where}${problem.message}${expected}` };
}

export function createFlowEditor({ parent, doc = "", loadSchema, check, onCheck, onSave, onChange }) {
  let schema = null;
  let schemaPromise = null;
  const ensureSchema = () => {
    if (!schemaPromise) {
      schemaPromise = Promise.resolve(loadSchema()).then((s) => {
        schema = new FlowSchema(s);
        return schema;
      });
      schemaPromise.catch(() => {
        schemaPromise = null; // try again on the next request
      });
    }
    return schemaPromise;
  };

  const complete = async (context) => {
    const text = context.state.doc.toString();
    const ctx = contextAt(text, context.pos);
    if (!ctx) return null;
    if (ctx.kind === "expression") {
      return {
        from: ctx.from,
        options: expressionOptions(ctx.root).map((o) => ({ label: o.label, type: "variable", detail: o.detail })),
        validFor: /^[\w.]*$/,
      };
    }
    if (!context.explicit && ctx.kind === "key" && !ctx.word && !ctx.itemStart) return null;
    const fs = schema || (await ensureSchema());
    if (ctx.kind === "value") {
      const options = valueOptions(fs, ctx.map, ctx.entry.key).map((o) => ({
        label: o.label,
        type: ctx.entry.key === "type" ? "class" : "enum",
        detail: o.detail || undefined,
        info: o.description || o.canonical ? () => docNode({ key: o.label, type: o.detail, description: o.description }) : undefined,
      }));
      return options.length ? { from: ctx.from, to: ctx.to, options, validFor: /^[\w.-]*$/ } : null;
    }
    const keys = keyOptions(fs, ctx.map, PROBE);
    let options = keys.map((o) => ({
      label: o.key,
      type: "property",
      detail: `${o.type}${o.required ? " · required" : ""}`,
      boost: o.key === "id" ? 3 : o.key === "type" ? 2 : o.required ? 1 : 0,
      apply: ctx.hasValue ? o.key : `${o.key}: `,
      info: () => docNode(o),
    }));
    if (!options.length && ctx.itemStart) {
      // A list of scalars (e.g. states): one item's allowed values.
      options = itemValueOptions(fs, ctx.map.parent.node).map((o) => ({ label: o.label, type: "enum" }));
    }
    return options.length ? { from: ctx.from, to: ctx.to, options, validFor: /^[\w.-]*$/ } : null;
  };

  const hover = hoverTooltip(async (view, pos) => {
    const text = view.state.doc.toString();
    const root = parse(text);
    const hit = tokenAt(root, pos);
    if (!hit || !hit.map) return null;
    const fs = schema || (await ensureSchema());
    let doc = null;
    let from;
    let to;
    if (hit.on === "value" && hit.entry.key === "type") {
      doc = hoverType(fs, hit.map, hit.entry.value);
      from = hit.entry.valueFrom;
      to = hit.entry.valueTo;
    } else {
      doc = hoverKey(fs, hit.map, hit.entry.key);
      from = hit.on === "key" ? hit.entry.from : hit.entry.valueFrom;
      to = hit.on === "key" ? hit.entry.to : hit.entry.valueTo;
    }
    if (!doc) return null;
    return { pos: from, end: to, above: true, create: () => ({ dom: docNode(doc) }) };
  }, { hoverTime: 250 });

  const lint = linter(async (view) => {
    const text = view.state.doc.toString();
    let result;
    try {
      result = await check(text);
    } catch (err) {
      if (onCheck) onCheck(null, text, err);
      return [];
    }
    if (onCheck) onCheck(result, text, null);
    const d = view.state.doc;
    return [
      ...(result.problems || []).map((p) => toDiagnostic(d, p, "error")),
      ...(result.warnings || []).map((p) => toDiagnostic(d, p, "warning")),
    ];
  }, { delay: CHECK_DELAY_MS });

  const saveKey = onSave ? [{ key: "Mod-s", preventDefault: true, run: () => { onSave(); return true; } }] : [];
  const listeners = onChange
    ? [EditorView.updateListener.of((u) => { if (u.docChanged) onChange(u.state.doc.toString()); })]
    : [];
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        foldGutter(),
        lintGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        indentUnit.of("  "),
        EditorState.tabSize.of(2),
        ...yamlSupport(),
        autocompletion({ override: [complete], icons: false }),
        hover,
        lint,
        ...listeners,
        keymap.of([
          ...saveKey,
          ...closeBracketsKeymap,
          ...defaultKeymap,
          ...searchKeymap,
          ...historyKeymap,
          ...foldKeymap,
          ...completionKeymap,
          ...lintKeymap,
          indentWithTab,
        ]),
      ],
    }),
  });
  ensureSchema().catch(() => {}); // fetch it now: the first completion is then instant

  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    focus: () => view.focus(),
    // Put the cursor at a line and column (1-based) and scroll it into view.
    reveal(line, column) {
      const l = view.state.doc.line(Math.min(Math.max(1, line), view.state.doc.lines));
      const pos = Math.min(l.from + Math.max(0, (column || 1) - 1), l.to);
      view.dispatch({ selection: { anchor: pos }, effects: EditorView.scrollIntoView(pos, { y: "center" }) });
      view.focus();
    },
    // Where a line and column are on screen (the browser tests hover there).
    coordsAt(line, column) {
      const l = view.state.doc.line(line);
      const c = view.coordsAtPos(Math.min(l.from + column - 1, l.to));
      return c ? { x: (c.left + c.right) / 2, y: (c.top + c.bottom) / 2 } : null;
    },
    // The cursor as {line, column} (1-based).
    cursor() {
      const head = view.state.selection.main.head;
      const l = view.state.doc.lineAt(head);
      return { line: l.number, column: head - l.from + 1 };
    },
    recheck: () => forceLinting(view),
    destroy: () => view.destroy(),
  };
}
