// Completion inside "{{ ... }}": the variables a flow's expressions can read (Kestra's names),
// with the ids this flow declares (its inputs, task ids, variables, labels).

import { entries, entryOf } from "./yamltree.js";

const FIXED = [
  ["flow.id", "this flow's id"],
  ["flow.namespace", "this flow's namespace"],
  ["flow.revision", "the revision the execution runs"],
  ["execution.id", "the execution's id"],
  ["execution.startDate", "when the execution started"],
  ["execution.state", "the execution's current state"],
  ["execution.originalId", "the first execution of a replay chain"],
  ["task.id", "the rendering task's id"],
  ["task.type", "the rendering task's type"],
  ["taskrun.id", "the task run's id"],
  ["taskrun.startDate", "when the task run started"],
  ["taskrun.attemptsCount", "attempts so far"],
  ["taskrun.value", "the current value of a ForEach"],
  ["taskrun.parentId", "the parent task run's id"],
  ["parent.taskrun.value", "the enclosing loop's value"],
  ["item.value", "Kestra 2.0: the current Loop iteration's value"],
  ["item.index", "Kestra 2.0: the current Loop iteration's index (from 0)"],
  ["item.key", "Kestra 2.0: the current Loop iteration's key (a map of values)"],
  ["item.parent.value", "Kestra 2.0: the enclosing Loop's value"],
  ["loopOutputs(outputs.loop.outputs, 'id')", "Kestra 2.0: one output of every Loop iteration"],
  ["trigger", "what the trigger gave (date, body, value...)"],
  ["labels", "the execution's labels"],
  ["envs", "environment variables the worker exposes"],
  ["kv('key')", "a key of the namespace's KV store"],
  ["secret('NAME')", "a secret"],
  ["now()", "the current date"],
];

const TASK_LISTS = new Set(["tasks", "errors", "finally", "then", "else", "defaults"]);

function idsOf(seq) {
  if (!seq || seq.kind !== "seq") return [];
  return seq.items.map((it) => it.child && entryOf(it.child, "id")).filter((e) => e && e.value).map((e) => e.value);
}

// The key of the entry that holds `node` (a map or seq), or null.
function holderKey(node) {
  const slot = node && node.parent && node.parent.slot;
  return slot && slot.key !== undefined ? slot.key : null;
}

function isTask(map) {
  const holder = map.parent && map.parent.node;
  if (!holder) return false;
  if (holder.kind === "map") return holderKey(map) === "task"; // a Dag entry's task
  if (holder.kind !== "seq") return false;
  const key = holderKey(holder);
  if (TASK_LISTS.has(key)) return true;
  const caseMap = holder.parent && holder.parent.node; // Switch: cases: {value: [tasks]}
  return !!caseMap && caseMap.kind === "map" && holderKey(caseMap) === "cases";
}

export function expressionOptions(root) {
  const top = root.child && root.child.kind === "map" ? root.child : null;
  const out = [];
  const add = (label, detail) => out.push({ label, detail });
  for (const id of idsOf(top && entryOf(top, "inputs") && entryOf(top, "inputs").child)) {
    add(`inputs.${id}`, "input");
  }
  const vars = top && entryOf(top, "variables");
  if (vars && vars.child && vars.child.kind === "map") {
    for (const e of vars.child.entries) add(`vars.${e.key}`, "variable");
  }
  const labels = top && entryOf(top, "labels");
  if (labels && labels.child && labels.child.kind === "map") {
    for (const e of labels.child.entries) add(`labels.${e.key}`, "label");
  }
  // A task is a mapping with an `id` and a `type` in a task list, a Switch case or a Dag entry.
  const seen = new Set();
  for (const { map, entry } of entries(root)) {
    if (entry.key !== "id" || !entry.value || seen.has(entry.value) || !entryOf(map, "type")) continue;
    if (!isTask(map)) continue;
    seen.add(entry.value);
    add(`outputs.${entry.value}`, "task outputs");
  }
  for (const [label, detail] of FIXED) add(label, detail);
  return out;
}
