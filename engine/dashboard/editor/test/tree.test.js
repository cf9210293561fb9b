import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { contextAt, parse, tokenAt, PROBE } from "../src/yamltree.js";
import { FlowSchema, keyOptions, valueOptions, hoverKey, hoverType, itemValueOptions } from "../src/schema.js";
import { expressionOptions } from "../src/expressions.js";

const schema = new FlowSchema(JSON.parse(readFileSync(new URL("../../../../schemas/flow.schema.json", import.meta.url))));

const FLOW = `id: hello
namespace: company.team
inputs:
  - id: name
    type: STRING
variables:
  greeting: hi
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: |
      Hello: {{ inputs.name }}
      - not: a key
    level: INFO
  - id: branches
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
    - id: left
      type: io.kestra.plugin.core.debug.Return
      format: "left"
triggers:
  - id: t
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 0 * * *"
`;

// The text with "‸" marking the cursor -> [text, pos].
function at(marked) {
  const pos = marked.indexOf("‸");
  return [marked.slice(0, pos) + marked.slice(pos + 1), pos];
}

test("the tree follows indentation, compact sequences and block scalars", () => {
  const root = parse(FLOW);
  const top = root.child;
  assert.equal(top.kind, "map");
  assert.deepEqual(top.entries.map((e) => e.key), ["id", "namespace", "inputs", "variables", "tasks", "triggers"]);
  const tasks = top.entries[4].child;
  assert.equal(tasks.kind, "seq");
  assert.equal(tasks.items.length, 2);
  const greet = tasks.items[0].child;
  assert.deepEqual(greet.entries.map((e) => e.key), ["id", "type", "message", "level"]);
  const inner = tasks.items[1].child.entries[2].child;
  assert.equal(inner.kind, "seq");
  assert.equal(inner.items[0].child.entries[0].value, "left");
  assert.equal(inner.items[0].child.entries[2].value, "left"); // unquoted
});

test("a key typed in a task is completed with that task type's properties", () => {
  const [text, pos] = at(FLOW.replace("    level: INFO\n", "    le‸\n    level: INFO\n"));
  const ctx = contextAt(text, pos);
  assert.equal(ctx.kind, "key");
  assert.equal(ctx.word, "le");
  const keys = keyOptions(schema, ctx.map, PROBE).map((o) => o.key);
  assert.ok(keys.includes("logLevel"), keys);
  assert.ok(!keys.includes("level"), "a key already present is not offered again");
  assert.ok(!keys.includes("message"));
  assert.ok(!keys.includes("format"), "Return's property is not a Log property");
});

test("a new sequence item offers the common task keys, id and type first", () => {
  const [text, pos] = at(FLOW.replace("triggers:", "  - ‸\ntriggers:"));
  const ctx = contextAt(text, pos);
  assert.equal(ctx.kind, "key");
  const keys = keyOptions(schema, ctx.map, PROBE).map((o) => o.key);
  assert.deepEqual(keys.slice(0, 2), ["id", "type"]);
  assert.ok(keys.includes("retry") && keys.includes("timeout"), keys);
  assert.ok(!keys.includes("message"));
});

test("the type value lists every task type name with its description", () => {
  const [text, pos] = at(FLOW.replace("    type: io.kestra.plugin.core.log.Log", "    type: io.kestra.plugin.core.fl‸"));
  const ctx = contextAt(text, pos);
  assert.equal(ctx.kind, "value");
  assert.equal(ctx.entry.key, "type");
  const options = valueOptions(schema, ctx.map, "type");
  const parallel = options.find((o) => o.label === "io.kestra.plugin.core.flow.Parallel");
  assert.ok(parallel, options.length);
  assert.match(parallel.description, /same time/);
  assert.ok(options.some((o) => o.label === "io.kestra.plugin.core.log.Log"));
  assert.ok(!options.some((o) => o.label === "STRING"), "input types are not task types");
});

test("enum values of a property", () => {
  const [text, pos] = at(FLOW.replace("    level: INFO", "    level: W‸"));
  const ctx = contextAt(text, pos);
  const labels = valueOptions(schema, ctx.map, "level").map((o) => o.label);
  assert.deepEqual(labels, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]);
});

test("input and trigger mappings pick their own alternative", () => {
  const [text, pos] = at(FLOW.replace("    type: STRING\n", "    type: STRING\n    val‸\n"));
  const ctx = contextAt(text, pos);
  const keys = keyOptions(schema, ctx.map, PROBE).map((o) => o.key);
  assert.ok(keys.includes("validator"), keys);
  const [t2, p2] = at(FLOW.replace('    cron: "0 0 * * *"', '    cron: "0 0 * * *"\n    ‸'));
  const keys2 = keyOptions(schema, contextAt(t2, p2).map, PROBE).map((o) => o.key);
  assert.ok(keys2.includes("timezone"), keys2);
});

test("top-level keys", () => {
  const [text, pos] = at(FLOW + "con‸");
  const keys = keyOptions(schema, contextAt(text, pos).map, PROBE).map((o) => o.key);
  assert.ok(keys.includes("concurrency") && keys.includes("labels"), keys);
  assert.ok(!keys.includes("tasks"));
});

test("hover on a key and on a type", () => {
  const root = parse(FLOW);
  const hit = tokenAt(root, FLOW.indexOf("allowFailure") >= 0 ? 0 : FLOW.indexOf("message:") + 2);
  assert.equal(hit.on, "key");
  const doc = hoverKey(schema, hit.map, hit.entry.key);
  assert.equal(doc.required, true);
  assert.match(doc.type, /string/);
  const typeHit = tokenAt(root, FLOW.indexOf("core.flow.Parallel") + 3);
  assert.equal(typeHit.on, "value");
  const typeDoc = hoverType(schema, typeHit.map, typeHit.entry.value);
  assert.match(typeDoc.description, /same time/);
  assert.ok(typeDoc.properties.includes("concurrent"));
});

test("expression completion knows the flow's inputs, tasks and variables", () => {
  const [text, pos] = at(FLOW.replace('format: "left"', 'format: "{{ out‸ }}"'));
  const ctx = contextAt(text, pos);
  assert.equal(ctx.kind, "expression");
  assert.equal(ctx.word, "out");
  const labels = expressionOptions(ctx.root).map((o) => o.label);
  for (const want of ["inputs.name", "vars.greeting", "outputs.greet", "outputs.branches", "outputs.left"]) {
    assert.ok(labels.includes(want), `${want} in ${labels}`);
  }
  assert.ok(!labels.includes("outputs.t"), "a trigger is not a task");
  assert.ok(!labels.includes("outputs.name"), "an input is not a task");
});

test("a Dag entry's task and a Switch case's tasks resolve", () => {
  const dag = `id: d
namespace: n
tasks:
  - id: g
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task:
          id: a
          type: io.kestra.plugin.core.log.Log
          mess‸
  - id: s
    type: io.kestra.plugin.core.flow.Switch
    value: x
    cases:
      x:
        - id: inx
          type: io.kestra.plugin.core.debug.Return
`;
  const [text, pos] = at(dag);
  const keys = keyOptions(schema, contextAt(text, pos).map, PROBE).map((o) => o.key);
  assert.ok(keys.includes("message"), keys);
  const labels = expressionOptions(parse(text)).map((o) => o.label);
  assert.ok(labels.includes("outputs.a") && labels.includes("outputs.inx"), labels);
  const [t2, p2] = at(dag.replace("      - task:\n", "      - dependsOn: []\n        ‸\n        task:\n"));
  // `task`, written after the cursor, is already there: nothing is left to offer.
  assert.deepEqual(keyOptions(schema, contextAt(t2, p2).map, PROBE), []);
  const [t3, p3] = at(dag.replace("mess‸", "message: m").replace("      - task:\n", "      - dependsOn: []\n        ‸\n      - task:\n"));
  assert.deepEqual(keyOptions(schema, contextAt(t3, p3).map, PROBE).map((o) => o.key), ["task"]);
});

test("list item scalar values", () => {
  const flow = `id: d
namespace: n
tasks:
  - id: l
    type: io.kestra.plugin.core.log.Log
    message: x
triggers:
  - id: f
    type: io.kestra.plugin.core.trigger.Flow
    stopAfter:
      - S‸
`;
  const [text, pos] = at(flow);
  const ctx = contextAt(text, pos);
  assert.equal(ctx.itemStart, true);
  const seq = ctx.map.parent.node;
  const labels = itemValueOptions(schema, seq).map((o) => o.label);
  assert.ok(labels.includes("SUCCESS") && labels.includes("FAILED"), labels);
});
