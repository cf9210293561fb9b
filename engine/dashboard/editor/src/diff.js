// Two revisions of a flow side by side, read-only, changes marked and long unchanged runs
// folded (CodeMirror's merge view).
//
//   const diff = createDiff({parent, a: olderSource, b: newerSource});

import { MergeView } from "@codemirror/merge";
import { EditorState } from "@codemirror/state";
import { EditorView, lineNumbers } from "@codemirror/view";
import { yamlSupport } from "./setup.js";

// Unchanged lines kept around a change, and the shortest unchanged run worth folding.
const CONTEXT_LINES = 3;
const FOLD_MIN_LINES = 6;

function side(doc) {
  return {
    doc,
    extensions: [lineNumbers(), EditorState.readOnly.of(true), EditorView.editable.of(false), ...yamlSupport()],
  };
}

export function createDiff({ parent, a, b }) {
  const view = new MergeView({
    a: side(a),
    b: side(b),
    parent,
    gutter: true,
    highlightChanges: true,
    collapseUnchanged: { margin: CONTEXT_LINES, minSize: FOLD_MIN_LINES },
  });
  return {
    view,
    changes: () => view.chunks.length,
    destroy: () => view.destroy(),
  };
}
