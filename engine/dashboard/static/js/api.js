// The API client of the pages: JSON requests, the bearer token, and server-sent events.
//
// EventSource cannot send an Authorization header, so follow streams are read with fetch()
// and parsed here: one code path whether or not the API needs credentials.

const TOKEN_KEY = "headwater.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

let pendingAsk = null;

// Show the token dialog; resolves true once a token was saved, false when cancelled.
export function askToken(reason) {
  if (pendingAsk) return pendingAsk;
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-reason").textContent =
    reason || "This API needs credentials: paste an API key.";
  input.value = token();
  pendingAsk = new Promise((resolve) => {
    const done = (saved) => {
      dialog.close();
      pendingAsk = null;
      resolve(saved);
    };
    document.getElementById("token-form").onsubmit = (ev) => {
      ev.preventDefault();
      setToken(input.value.trim());
      done(true);
    };
    document.getElementById("token-cancel").onclick = () => done(false);
    document.getElementById("token-clear").onclick = () => {
      setToken("");
      done(false);
    };
    dialog.showModal();
    input.focus();
  });
  return pendingAsk;
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) u.searchParams.append(k, item);
  }
  return u;
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const t = token();
  if (t) out.Authorization = `Bearer ${t}`;
  return out;
}

async function problemOf(res) {
  try {
    return await res.json();
  } catch {
    return { title: res.statusText || `HTTP ${res.status}` };
  }
}

// One request; a 401 asks for a token once and retries with it.
export async function api(method, path, { json, yaml, form, query, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const extra = {};
    let body;
    if (form !== undefined) {
      body = form; // FormData: the browser writes the multipart Content-Type and boundary
    } else if (json !== undefined) {
      extra["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (yaml !== undefined) {
      extra["Content-Type"] = "application/x-yaml";
      body = yaml;
    }
    const res = await fetch(url(path, query), { method, headers: headers(extra), body, signal });
    if (res.status === 401 && attempt === 0) {
      const problem = await problemOf(res);
      if (await askToken(problem.detail)) continue;
    }
    if (!res.ok) throw new ApiError(res.status, await problemOf(res));
    if (res.status === 204) return null;
    const text = await res.text(); // some answers (file uploads, deletes) have no body
    return text ? JSON.parse(text) : null;
  }
}

export const get = (path, query, signal) => api("GET", path, { query, signal });

// Server-sent events of one stream: yields {event, data} until the server ends it.
export async function* events(path, signal) {
  const res = await fetch(url(path), { headers: headers({ Accept: "text/event-stream" }), signal });
  if (res.status === 401) {
    await askToken((await problemOf(res)).detail);
    throw new ApiError(401, { title: "Unauthorized" });
  }
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
