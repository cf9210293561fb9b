// Headwater's flow JSON Schema, read for completion and hover (no validation: the API does that,
// with the same code a deploy runs, and its problems come back located).
//
// The schema's shape: every task, trigger, input and condition is one alternative of a oneOf
// (or anyOf) whose `type` property is a const or an enum of accepted names (canonical, legacy
// alias, short name). A mapping picks its alternative by its own `type` value, as the loader
// does, so a half-written task still gets its properties offered. Without a `type` yet, the
// keys every alternative has (id, type, retry, timeout...) are offered.

import { ancestry, entryOf } from "./yamltree.js";

// An "or an expression" alternative: a string holding "{{" or "{%".
const EXPRESSION_PATTERN = "\\{[{%]";

export class FlowSchema {
  constructor(schema) {
    this.root = schema;
    this.defs = schema.$defs || schema.definitions || {};
    this._alts = new Map();
  }

  deref(s) {
    let seen = 0;
    while (s && typeof s === "object" && typeof s.$ref === "string" && seen++ < 32) {
      const name = s.$ref.replace(/^#\/(\$defs|definitions)\//, "");
      const target = this.defs[name];
      if (!target) return null;
      s = target;
    }
    return s && typeof s === "object" ? s : null;
  }

  // Every alternative of a schema (anyOf/oneOf/allOf of one flattened, refs resolved), without
  // `null` and without the "or an expression" string.
  alternatives(s) {
    const node = this.deref(s);
    if (!node) return [];
    if (this._alts.has(node)) return this._alts.get(node);
    let out;
    const group = node.anyOf || node.oneOf || (node.allOf && node.allOf.length === 1 ? node.allOf : null);
    if (group) {
      out = group.flatMap((x) => this.alternatives(x));
    } else if (node.type === "null" || (node.pattern === EXPRESSION_PATTERN && node.type === "string")) {
      out = [];
    } else {
      out = [node];
    }
    this._alts.set(node, out);
    return out;
  }

  // Whether the value may also be an expression ("{{ ... }}").
  acceptsExpression(s) {
    const node = this.deref(s);
    if (!node) return false;
    const group = node.anyOf || node.oneOf;
    if (group) return group.some((x) => this.acceptsExpression(x));
    return node.pattern === EXPRESSION_PATTERN || (node.type === "string" && !node.enum && !node.const && !node.pattern);
  }
}

const isObject = (s) => s.type === "object" || !!s.properties || (s.additionalProperties && typeof s.additionalProperties === "object");
const isArray = (s) => s.type === "array" || !!s.items;

export function typeNames(fs, alt) {
  const prop = fs.deref(alt.properties && alt.properties.type);
  if (!prop) return [];
  if (prop.const !== undefined) return [String(prop.const)];
  if (Array.isArray(prop.enum)) return prop.enum.map(String);
  return [];
}

function objects(fs, schemas) {
  return schemas.flatMap((s) => fs.alternatives(s)).filter(isObject);
}

// The alternatives of a mapping that its own `type` value selects (all of them without one).
function select(fs, alts, map) {
  const typed = entryOf(map, "type");
  if (!typed || !typed.value || alts.length < 2) return alts;
  const chosen = alts.filter((a) => typeNames(fs, a).includes(typed.value));
  return chosen.length ? chosen : alts;
}

function propertySchemas(fs, alts, key) {
  const out = [];
  for (const a of alts) {
    if (a.properties && a.properties[key]) out.push(a.properties[key]);
    else if (a.additionalProperties && typeof a.additionalProperties === "object") out.push(a.additionalProperties);
  }
  return out;
}

// The schemas that describe `node` (a Map or Seq of the tree), outermost variant choice applied
// at each mapping on the way down.
export function schemasOf(fs, node) {
  let current = [fs.root];
  const chain = ancestry(node);
  for (let i = 0; i < chain.length; i++) {
    const n = chain[i];
    if (i > 0) {
      const parent = chain[i - 1];
      const slot = n.parent && n.parent.slot;
      if (!slot) return [];
      if (parent.kind === "map") {
        current = propertySchemas(fs, mapAlternatives(fs, current, parent), slot.key);
      } else {
        current = current.flatMap((s) => fs.alternatives(s)).filter(isArray).map((a) => a.items).filter(Boolean);
      }
    }
    if (!current.length) return [];
  }
  return current;
}

export function mapAlternatives(fs, schemas, map) {
  return select(fs, objects(fs, schemas), map);
}

// ---------------------------------------------------------------------------- describing

function refName(s) {
  return s && typeof s.$ref === "string" ? s.$ref.split("/").at(-1) : null;
}

// A short type: "string", "integer | expression", "list of LogTask | ...", "one of A, B".
export function typeSummary(fs, schema, depth = 0) {
  const node = fs.deref(schema);
  if (!node) return "";
  const parts = [];
  const alts = (node.anyOf || node.oneOf) ? (node.anyOf || node.oneOf) : [schema];
  let expression = false;
  for (const raw of alts) {
    const name = refName(raw);
    const s = fs.deref(raw);
    if (!s) continue;
    if (s.anyOf || s.oneOf) {
      if (depth < 2) parts.push(typeSummary(fs, s, depth + 1));
      continue;
    }
    if (s.type === "null") continue;
    if (s.pattern === EXPRESSION_PATTERN) {
      expression = true;
      continue;
    }
    if (s.const !== undefined) parts.push(JSON.stringify(s.const));
    else if (Array.isArray(s.enum)) {
      parts.push(s.enum.length > 6 ? `one of ${s.enum.length} names` : s.enum.map((v) => JSON.stringify(v)).join(" | "));
    } else if (isArray(s)) {
      const items = s.items ? fs.deref(s.items) : null;
      const itemAlts = items ? (items.oneOf || items.anyOf || [s.items]) : [];
      const inner = itemAlts.length > 3 ? `${itemAlts.length} kinds` : itemAlts.map((x) => refName(x) || typeSummary(fs, x, depth + 1)).join(" | ");
      parts.push(`list of ${inner || "any"}`);
    } else if (name) parts.push(name);
    else if (isObject(s)) parts.push("map");
    else if (s.type) parts.push(String(s.type));
  }
  const out = [...new Set(parts.filter(Boolean))];
  if (expression) out.push("expression");
  return out.join(" | ") || "any";
}

// Titles pydantic derives from the field name ("Allowfailure") say nothing: keep real ones.
function meaningfulTitle(key, s) {
  return s.title && s.title.toLowerCase() !== String(key).toLowerCase() ? s.title : null;
}

export function describeProperty(fs, key, schema, required) {
  const s = fs.deref(schema) || {};
  const inner = (s.anyOf || s.oneOf || []).map((x) => fs.deref(x)).filter(Boolean);
  const description = s.description || inner.map((x) => x.description).find(Boolean) || null;
  const values = [...new Set(fs.alternatives(schema).flatMap((a) => (a.enum || (a.const !== undefined ? [a.const] : []))))];
  return {
    key,
    type: typeSummary(fs, schema),
    title: meaningfulTitle(key, s),
    description,
    required: !!required,
    default: s.default !== undefined && s.default !== null ? s.default : undefined,
    values: values.length && values.length <= 12 ? values : undefined,
  };
}

// ---------------------------------------------------------------------------- completion

const FIRST_KEYS = ["id", "type"];

// Keys for the mapping `map` (which holds the probe, and maybe other keys already).
export function keyOptions(fs, map, exclude) {
  const schemas = schemasOf(fs, map);
  const alts = mapAlternatives(fs, schemas, map);
  if (!alts.length) return [];
  const present = new Set(map.entries.map((e) => e.key).filter((k) => k !== exclude));
  let keys;
  if (alts.length === 1) keys = Object.keys(alts[0].properties || {});
  else {
    // Several alternatives (no `type` yet): the keys all of them have, else any of them has.
    const sets = alts.map((a) => new Set(Object.keys(a.properties || {})));
    keys = [...sets[0]].filter((k) => sets.every((s) => s.has(k)));
    if (!keys.length) keys = [...new Set(sets.flatMap((s) => [...s]))];
  }
  const required = new Set(alts.length === 1 ? alts[0].required || [] : alts.flatMap((a) => a.required || []).filter((k, _i, all) => all.filter((x) => x === k).length === alts.length));
  return keys
    .filter((k) => !present.has(k))
    .map((k) => {
      const prop = propertySchemas(fs, alts, k)[0];
      return describeProperty(fs, k, prop, required.has(k));
    })
    .sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key));
}

function rank(option) {
  const first = FIRST_KEYS.indexOf(option.key);
  if (first >= 0) return first;
  return option.required ? 10 : 20;
}

// Values for the key `key` of `map`: consts and enums (every task type name for `type`), booleans.
export function valueOptions(fs, map, key) {
  const schemas = schemasOf(fs, map);
  const alts = key === "type" ? objects(fs, schemas) : mapAlternatives(fs, schemas, map);
  const out = new Map();
  for (const a of alts) {
    const prop = a.properties && a.properties[key];
    if (!prop) continue;
    for (const v of fs.alternatives(prop)) {
      const values = v.const !== undefined ? [v.const] : v.enum || (v.type === "boolean" ? [true, false] : []);
      values.forEach((value, i) => {
        const label = String(value);
        if (out.has(label)) return;
        out.set(label, {
          label,
          detail: key === "type" ? (i === 0 ? a.title : `alias of ${values[0]}`) : typeof value,
          description: key === "type" ? a.description || null : null,
          canonical: key === "type" && i > 0 ? String(values[0]) : null,
        });
      });
    }
  }
  return [...out.values()];
}

// The scalar items of a sequence (e.g. a list of enum values): options for one item.
export function itemValueOptions(fs, seq) {
  const schemas = schemasOf(fs, seq);
  const items = schemas.flatMap((s) => fs.alternatives(s)).filter(isArray).map((a) => a.items).filter(Boolean);
  const out = new Set();
  for (const it of items) {
    for (const v of fs.alternatives(it)) {
      for (const value of v.const !== undefined ? [v.const] : v.enum || []) out.add(String(value));
    }
  }
  return [...out].map((label) => ({ label, detail: "", description: null }));
}

// ------------------------------------------------------------------------------- hover

// What to show for the key `key` of `map`; for the `type` value, the type's own description.
export function hoverKey(fs, map, key) {
  const alts = mapAlternatives(fs, schemasOf(fs, map), map);
  const prop = propertySchemas(fs, alts, key)[0];
  if (!prop) return null;
  const required = alts.length > 0 && alts.every((a) => (a.required || []).includes(key));
  return describeProperty(fs, key, prop, required);
}

export function hoverType(fs, map, value) {
  const alts = objects(fs, schemasOf(fs, map)).filter((a) => typeNames(fs, a).includes(value));
  if (!alts.length) return null;
  const a = alts[0];
  const names = typeNames(fs, a);
  return {
    key: value,
    type: a.title || "",
    title: names[0] !== value ? `alias of ${names[0]}` : null,
    description: a.description || null,
    required: false,
    default: undefined,
    values: names.length > 1 ? names : undefined,
    properties: Object.keys(a.properties || {}).filter((k) => !["id", "type"].includes(k)),
    requiredProperties: (a.required || []).filter((k) => !["id", "type"].includes(k)),
  };
}
