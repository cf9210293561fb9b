// The single-page app: hash routes -> page modules. Each page's mount(root, parts, query)
// returns a cleanup function that stops its timers and streams when the user leaves.

import { askToken } from "./api.js";
import { notify, parseHash } from "./dom.js";
import * as execution from "./execution.js";
import * as executions from "./executions.js";
import * as flows from "./flows.js";
import * as namespaces from "./namespaces.js";
import * as system from "./system.js";
import * as triggers from "./triggers.js";

function route(parts) {
  const [page, ...rest] = parts;
  switch (page) {
    case "flows":
      if (rest.length === 0) return [flows.mountList, "flows"];
      return [flows.mountFlow, "flows"];
    case "executions":
      return rest.length ? [execution.mount, "executions"] : [executions.mount, "executions"];
    case "namespaces":
      return [rest.length ? namespaces.mountNamespace : namespaces.mountList, "namespaces"];
    case "triggers":
      return [triggers.mount, "triggers"];
    case "system":
      return [system.mount, "system"];
    default:
      return [null, null];
  }
}

let cleanup = null;

function render() {
  const { parts, query } = parseHash(location.hash);
  const [mount, page] = route(parts);
  if (!mount) {
    location.replace("#/executions");
    return;
  }
  if (cleanup) cleanup();
  cleanup = null;
  notify("");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === page);
  }
  const root = document.getElementById("view");
  root.replaceChildren();
  root.dataset.page = page;
  cleanup = mount(root, parts.slice(1), query) || null;
}

window.addEventListener("hashchange", render);
document.getElementById("token-button").addEventListener("click", async () => {
  if (await askToken("The API token is kept in this browser (localStorage).")) render();
});
render();
