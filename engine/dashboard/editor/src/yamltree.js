// A tolerant reader of block-style YAML structure, for completion and hover.
//
// It answers "which mapping or sequence holds this position, and what are the keys and scalar
// values around it" for text that is being typed and often not valid YAML yet. A full parser
// gives up on a half-written line; this one reads line by line and builds a tree from the
// indentation, the way a reader of a flow does. Flow collections ([a, b], {a: 1}) and quoted or
// block scalars are scalar values here; the content lines of a block scalar (`|`, `>`) are
// skipped. Positions are offsets into the text.
//
//   parse(text) -> root                     root.child is the top-level Map (or Seq, or null)
//   Map  {kind: "map", col, entries: [Entry], parent: Ref}
//   Seq  {kind: "seq", col, items: [Item], parent: Ref}
//   Entry {key, line, from, to, value, valueFrom, valueTo, child}   (value: unquoted scalar text)
//   Item  {line, from, value, valueFrom, valueTo, child}
//   Ref  {node, slot}: the container and the Entry or Item holding this node (root: slot null)

const BLOCK_SCALAR = /^[|>][-+0-9]*\s*(#.*)?$/;

function unquote(raw) {
  const t = raw.trim();
  if (t.length >= 2 && t[0] === '"' && t.at(-1) === '"') {
    try {
      return JSON.parse(t);
    } catch {
      return t.slice(1, -1);
    }
  }
  if (t.length >= 2 && t[0] === "'" && t.at(-1) === "'") return t.slice(1, -1).replaceAll("''", "'");
  return t;
}

// The end of a scalar before its comment (" #"), outside quotes.
function scalarEnd(text, start) {
  let quote = null;
  for (let j = start; j < text.length; j++) {
    const c = text[j];
    if (quote) {
      if (c === quote) quote = null;
    } else if ((c === '"' || c === "'") && j === start) quote = c;
    else if (c === "#" && (j === start || text[j - 1] === " " || text[j - 1] === "\t")) return j;
  }
  return text.length;
}

// A key at `p` ("key:", '"quoted key":'), or null: returns the key's end and the colon's index.
function keyAt(text, p) {
  const c = text[p];
  if (c === undefined || c === "#" || c === "[" || c === "{") return null;
  if (c === '"' || c === "'") {
    let j = p + 1;
    while (j < text.length && text[j] !== c) j += text[j] === "\\" && c === '"' ? 2 : 1;
    if (j >= text.length) return null;
    let k = j + 1;
    while (text[k] === " " || text[k] === "\t") k++;
    if (text[k] === ":" && (k + 1 === text.length || /\s/.test(text[k + 1]))) {
      return { keyEnd: j + 1, colon: k };
    }
    return null;
  }
  for (let j = p; j < text.length; j++) {
    const ch = text[j];
    if (ch === "#" && j > p && /\s/.test(text[j - 1])) return null;
    if (ch === ":" && (j + 1 === text.length || /\s/.test(text[j + 1]))) {
      let end = j;
      while (end > p && /\s/.test(text[end - 1])) end--;
      return end > p ? { keyEnd: end, colon: j } : null;
    }
  }
  return null;
}

// The tokens of one line: dashes ("- "), then a key with its value, or a scalar.
export function scanLine(text) {
  const tokens = [];
  let p = 0;
  while (text[p] === " ") p++;
  if (p >= text.length || text[p] === "#" || text[p] === "\t") return tokens;
  if (p === 0 && (text.startsWith("---") || text.startsWith("..."))) return tokens;
  for (;;) {
    if (text[p] === "-" && (p + 1 === text.length || text[p + 1] === " ")) {
      tokens.push({ t: "dash", col: p });
      p++;
      while (text[p] === " ") p++;
      if (p >= text.length || text[p] === "#") return tokens;
      continue;
    }
    break;
  }
  const key = keyAt(text, p);
  if (key) {
    let v = key.colon + 1;
    while (text[v] === " " || text[v] === "\t") v++;
    const end = scalarEnd(text, v);
    let raw = text.slice(v, end);
    const trimmed = raw.trimEnd();
    raw = trimmed;
    tokens.push({
      t: "key",
      col: p,
      key: unquote(text.slice(p, key.keyEnd)),
      keyEnd: key.keyEnd,
      valueCol: v,
      valueEnd: v + raw.length,
      raw,
    });
    return tokens;
  }
  const end = scalarEnd(text, p);
  const raw = text.slice(p, end).trimEnd();
  if (raw) tokens.push({ t: "scalar", col: p, valueEnd: p + raw.length, raw });
  return tokens;
}

function attach(frame, node) {
  node.parent = { node: frame, slot: null };
  // A slot that already holds a node keeps it: the newcomer (invalid YAML, e.g. a key at the
  // column of a sequence's dashes) stays an orphan that resolves to no schema.
  if (frame.kind === "root") {
    if (!frame.child) frame.child = node;
    return;
  }
  const slot = frame.kind === "map" ? frame.entries.at(-1) : frame.items.at(-1);
  if (slot && !slot.child) {
    slot.child = node;
    node.parent.slot = slot;
  }
}

export function parse(text) {
  const root = { kind: "root", col: -1, child: null };
  const stack = [root];
  const top = () => stack.at(-1);
  const lines = text.split("\n");
  let offset = 0;
  let blockCol = null; // inside a block scalar whose parent sits at this column
  lines.forEach((lineText, index) => {
    const line = index + 1;
    const start = offset;
    offset += lineText.length + 1;
    if (blockCol !== null) {
      const indent = lineText.length - lineText.trimStart().length;
      if (!lineText.trim() || indent > blockCol) return;
      blockCol = null;
    }
    let lastDash = null;
    for (const tok of scanLine(lineText)) {
      if (tok.t === "dash") {
        while (top().col > tok.col) stack.pop();
        let seq = top();
        if (!(seq.kind === "seq" && seq.col === tok.col)) {
          seq = { kind: "seq", col: tok.col, items: [], parent: null, line };
          attach(top(), seq);
          stack.push(seq);
        }
        const item = { line, from: start + tok.col, value: null, valueFrom: null, valueTo: null, child: null };
        seq.items.push(item);
        lastDash = tok;
      } else if (tok.t === "key") {
        while (top().col > tok.col) stack.pop();
        if (top().kind === "seq" && top().col === tok.col) stack.pop();
        let map = top();
        if (!(map.kind === "map" && map.col === tok.col)) {
          map = { kind: "map", col: tok.col, entries: [], parent: null, line };
          attach(top(), map);
          stack.push(map);
        }
        const entry = {
          key: tok.key,
          line,
          from: start + tok.col,
          to: start + tok.keyEnd,
          value: tok.raw ? unquote(tok.raw) : null,
          valueFrom: tok.raw ? start + tok.valueCol : null,
          valueTo: tok.raw ? start + tok.valueEnd : null,
          child: null,
        };
        map.entries.push(entry);
        if (tok.raw && BLOCK_SCALAR.test(tok.raw)) {
          entry.value = "";
          blockCol = tok.col;
        }
      } else {
        const frame = top();
        if (lastDash && frame.kind === "seq") {
          const item = frame.items.at(-1);
          item.value = unquote(tok.raw);
          item.valueFrom = start + tok.col;
          item.valueTo = start + tok.valueEnd;
          if (BLOCK_SCALAR.test(tok.raw)) {
            item.value = "";
            blockCol = lastDash.col;
          }
        }
      }
    }
  });
  return root;
}

// The chain from the root to `node`: [{node, slot}, ...], outermost first, ending at `node`.
export function ancestry(node) {
  const out = [];
  for (let n = node; n && n.kind !== "root"; n = n.parent && n.parent.node) {
    out.unshift(n);
  }
  return out;
}

// Every entry of every map in the tree, in order: [{map, entry}].
export function entries(root) {
  const out = [];
  const walk = (node) => {
    if (!node) return;
    if (node.kind === "map") {
      for (const e of node.entries) {
        out.push({ map: node, entry: e });
        walk(e.child);
      }
    } else if (node.kind === "seq") {
      for (const it of node.items) walk(it.child);
    }
  };
  walk(root.child);
  return out;
}

export function entryOf(map, key) {
  return map && map.kind === "map" ? map.entries.find((e) => e.key === key) : undefined;
}

// The entry or item whose line holds `pos` and whose key or value covers it.
export function tokenAt(root, pos) {
  let found = null;
  const walk = (node) => {
    if (!node || found) return;
    if (node.kind === "map") {
      for (const e of node.entries) {
        if (pos >= e.from && pos <= e.to) found = { map: node, entry: e, on: "key" };
        else if (e.valueFrom !== null && pos >= e.valueFrom && pos <= e.valueTo) {
          found = { map: node, entry: e, on: "value" };
        }
        if (found) return;
        walk(e.child);
      }
    } else if (node.kind === "seq") {
      for (const it of node.items) {
        if (it.valueFrom !== null && pos >= it.valueFrom && pos <= it.valueTo) {
          found = { seq: node, item: it, on: "item" };
          return;
        }
        walk(it.child);
      }
    }
  };
  walk(root.child);
  return found;
}

export const PROBE = "__hw_probe__";

// What is being typed at `pos`: a key (or a sequence item's scalar), a key's value, or an
// expression inside "{{ }}". The text is re-read with the word at the cursor replaced by a
// probe key, so the mapping that would hold it is known, with its keys after the cursor too.
export function contextAt(text, pos) {
  const lineStart = text.lastIndexOf("\n", pos - 1) + 1;
  let lineEnd = text.indexOf("\n", pos);
  if (lineEnd < 0) lineEnd = text.length;
  const before = text.slice(lineStart, pos);
  const after = text.slice(pos, lineEnd);

  const open = before.lastIndexOf("{{");
  if (open >= 0 && before.indexOf("}}", open) < 0) {
    const word = /[\w.]*$/.exec(before)[0];
    return { kind: "expression", from: pos - word.length, to: pos, word, root: parse(text) };
  }

  const keyLike = /^(\s*)((?:-\s+)*)([^\s:#'"{[][^:#]*)?$/.exec(before);
  if (keyLike) {
    const word = keyLike[3] || "";
    if (!/\s/.test(word.trimEnd()) && word === word.trimEnd()) {
      const rest = /^[^\s:#]*/.exec(after)[0];
      const from = pos - word.length;
      const tail = after.slice(rest.length);
      const probeLine = `${keyLike[1]}${keyLike[2]}${PROBE}:${/^\s*:/.test(tail) ? tail.replace(/^\s*:/, "") : ""}`;
      const probed = text.slice(0, lineStart) + probeLine + text.slice(lineEnd);
      const root = parse(probed);
      const hit = entries(root).find((x) => x.entry.key === PROBE);
      if (hit) {
        return {
          kind: "key",
          from,
          to: pos + rest.length,
          word,
          map: hit.map,
          probe: hit.entry,
          root,
          hasValue: /^\s*:/.test(tail),
          itemStart: keyLike[2].length > 0 && hit.map.entries.length === 1,
        };
      }
    }
  }

  const valueLike = /^(\s*)((?:-\s+)*)("[^"]*"|'[^']*'|[^\s:#'"{[][^:#]*?)\s*:\s+(\S*)$/.exec(before);
  if (valueLike) {
    const word = valueLike[4];
    const rest = /^[^\s#]*/.exec(after)[0];
    const root = parse(text);
    const keyPos = lineStart + valueLike[1].length + valueLike[2].length;
    const hit = entries(root).find((x) => x.entry.from === keyPos);
    if (hit) {
      return {
        kind: "value",
        from: pos - word.length,
        to: pos + rest.length,
        word,
        map: hit.map,
        entry: hit.entry,
        root,
      };
    }
  }
  return null;
}
