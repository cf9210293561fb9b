// The log panel of an execution: lines as they stream in, filtered by a minimum level, a
// text search (matches marked), and optionally one task run or one of its attempts.
// Filtering hides lines (no re-render), so a filter change on thousands of lines is instant.

import { fmtDate, h } from "./dom.js";

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
const DEFAULT_LEVEL = "INFO";
// The browser keeps at most this many lines (the oldest go first).
const MAX_LINES = 5000;

export class LogView {
  constructor() {
    this.seen = new Set();
    this.taskRunNames = new Map(); // task run id -> "taskId [value]"
    this.filter = { level: DEFAULT_LEVEL, text: "", taskRun: null, attempt: null };
    this.shown = 0;
    this.level = h("select", { id: "log-level", title: "lowest level shown" },
      ...LEVELS.map((l) => h("option", { value: l, selected: l === DEFAULT_LEVEL }, `${l}${l === "ERROR" ? "" : " and above"}`)));
    this.search = h("input", { type: "search", id: "log-search", placeholder: "search the logs…", size: 28 });
    this.scope = h("span", { id: "log-scope", class: "chip", hidden: true });
    this.count = h("span", { id: "log-count", class: "muted" }, "0 lines");
    this.follow = h("input", { type: "checkbox", checked: true, id: "logs-follow" });
    this.lines = h("div", { class: "logs", id: "logs" });
    this.empty = h("div", { class: "logs-empty muted", id: "logs-empty", hidden: true }, "No line matches the filters.");
    this.element = h("div", { class: "log-panel" },
      h("div", { class: "toolbar" }, this.level, this.search, this.scope, h("span", { class: "spacer" }), this.count,
        h("label", { class: "muted" }, this.follow, "follow")),
      this.lines, this.empty);
    this.level.addEventListener("change", () => { this.filter.level = this.level.value; this.apply(); });
    let timer = null;
    this.search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.filter.text = this.search.value.trim(); this.apply(); }, 120);
    });
  }

  // Task run ids -> names, for the scope chip.
  names(runs) {
    for (const r of runs) this.taskRunNames.set(r.id, r.value != null ? `${r.taskId} [${r.value}]` : r.taskId);
  }

  // Show only one task run's lines (and one attempt's, when given); null shows everything.
  only(run, attempt) {
    this.filter.taskRun = run ? run.id : null;
    this.filter.attempt = run ? attempt : null;
    if (run) {
      const name = this.taskRunNames.get(run.id) || run.taskId;
      this.scope.replaceChildren(`task run ${name}${attempt ? `, attempt ${attempt}` : ""} `,
        h("button", { type: "button", class: "ghost small", id: "log-scope-clear", title: "show every line", onclick: () => this.only(null) }, "✕"));
    }
    this.scope.hidden = !run;
    this.apply();
  }

  add(l) {
    if (this.seen.has(l.logId)) return; // a reconnected stream repeats what we have
    this.seen.add(l.logId);
    const line = h("div", {
      class: "line",
      "data-level": l.level,
      "data-task-run": l.taskRunId || "",
      "data-attempt": l.attempt ?? "",
    },
    h("span", { class: "ts" }, fmtDate(l.timestamp).slice(11)),
    h("span", { class: `lvl ${l.level}` }, l.level),
    l.taskId ? h("span", { class: "task" }, l.taskId) : null,
    h("span", { class: "msg" }, l.message));
    line.hwMessage = `${l.taskId || ""} ${l.message}`.toLowerCase();
    line.hwText = l.message;
    this.lines.append(line);
    if (this.show(line)) this.shown++;
    while (this.lines.childElementCount > MAX_LINES) {
      if (!this.lines.firstElementChild.hidden) this.shown--;
      this.lines.firstElementChild.remove();
    }
    this.counted();
    if (this.follow.checked) this.lines.scrollTop = this.lines.scrollHeight;
  }

  matches(line) {
    const f = this.filter;
    if (LEVELS.indexOf(line.dataset.level) < LEVELS.indexOf(f.level)) return false;
    if (f.taskRun && line.dataset.taskRun !== f.taskRun) return false;
    if (f.attempt && line.dataset.attempt !== String(f.attempt)) return false;
    return !f.text || line.hwMessage.includes(f.text.toLowerCase());
  }

  show(line) {
    const visible = this.matches(line);
    line.hidden = !visible;
    const msg = line.querySelector(".msg");
    const needle = this.filter.text.toLowerCase();
    if (visible && needle) {
      // Mark every match (text nodes only: a log line is data, never markup).
      const text = line.hwText;
      const lower = text.toLowerCase();
      const parts = [];
      let at = 0;
      for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, i + needle.length)) {
        parts.push(text.slice(at, i), h("mark", null, text.slice(i, i + needle.length)));
        at = i + needle.length;
      }
      parts.push(text.slice(at));
      msg.replaceChildren(...parts);
    } else if (msg.childElementCount) {
      msg.replaceChildren(line.hwText);
    }
    return visible;
  }

  apply() {
    this.shown = 0;
    for (const line of this.lines.children) if (this.show(line)) this.shown++;
    this.counted();
  }

  counted() {
    const total = this.lines.childElementCount;
    const shown = this.shown;
    this.count.textContent = shown === total ? `${total} line${total === 1 ? "" : "s"}` : `${shown} of ${total} lines`;
    this.count.dataset.shown = String(shown);
    this.count.dataset.total = String(total);
    this.empty.hidden = !(total && !shown);
  }
}
