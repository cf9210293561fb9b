// What every editor of the dashboard shares: YAML highlighting, the look, "{{ }}" marked.

import { yaml } from "@codemirror/lang-yaml";
import { defaultHighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { Decoration, EditorView, MatchDecorator, ViewPlugin } from "@codemirror/view";

// Expressions ("{{ ... }}", "{% ... %}") stand out from the YAML around them.
const expressionMarks = new MatchDecorator({
  regexp: /\{\{[^\n]*?\}\}|\{%[^\n]*?%\}/g,
  decoration: Decoration.mark({ class: "cm-hw-expression" }),
});

export const highlightExpressions = ViewPlugin.fromClass(
  class {
    constructor(view) {
      this.decorations = expressionMarks.createDeco(view);
    }
    update(update) {
      this.decorations = expressionMarks.updateDeco(update, this.decorations);
    }
  },
  { decorations: (v) => v.decorations },
);

export const look = EditorView.theme({
  "&": { height: "100%", fontSize: "12.5px", backgroundColor: "#fff" },
  "&.cm-focused": { outline: "none" },
  ".cm-scroller": {
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    lineHeight: "18px",
  },
  ".cm-gutters": { backgroundColor: "#f3f4f7", color: "#9aa3b2", borderRight: "1px solid #dde1e7" },
  ".cm-activeLineGutter": { backgroundColor: "#e6ebf3" },
  ".cm-activeLine": { backgroundColor: "#f5f8fd" },
  ".cm-hw-expression": { color: "#7a3fb0", backgroundColor: "#f6effc", borderRadius: "3px" },
  ".cm-tooltip": { border: "1px solid #dde1e7", borderRadius: "6px", boxShadow: "0 4px 14px #1d253322" },
  ".cm-tooltip.cm-tooltip-autocomplete > ul": { maxHeight: "18em", fontFamily: "ui-monospace, monospace" },
  ".cm-tooltip.cm-tooltip-autocomplete > ul > li": { padding: "2px 8px" },
  ".cm-completionDetail": { color: "#687385", fontStyle: "normal", marginLeft: "1em" },
  ".cm-completionInfo": { maxWidth: "420px" },
});

export function yamlSupport() {
  return [yaml(), syntaxHighlighting(defaultHighlightStyle, { fallback: true }), highlightExpressions, look];
}
