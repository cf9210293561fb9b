// Build the editor bundle into engine/dashboard/static/editor/ (committed: users need no
// build step and no network). Run by `make dashboard-assets` after `npm ci`.
//
// Two entry points share one chunk of CodeMirror: editor.js (the flow editor) and diff.js (the
// revisions' diff view). BUILD.json records a hash of the sources and the lock file, so a test
// can tell a bundle that no longer matches its sources without node; THIRD-PARTY-LICENSES.txt
// carries the licences of what is bundled.

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "editor");

// The files whose content decides the bundle (keep in step with tests/unit/test_dashboard_assets.py).
export function sourceFiles() {
  const src = readdirSync(join(here, "src")).filter((f) => f.endsWith(".js")).map((f) => `src/${f}`);
  return ["build.mjs", "package-lock.json", ...src].sort();
}

export function sourceHash() {
  const hash = createHash("sha256");
  for (const name of sourceFiles()) {
    hash.update(name);
    hash.update("\0");
    hash.update(readFileSync(join(here, name)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

function packageOf(path) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  return m ? m[1] : null;
}

function licenses(inputs) {
  const names = [...new Set(inputs.map(packageOf).filter(Boolean))].sort();
  const parts = [];
  for (const name of names) {
    const dir = join(here, "node_modules", name);
    const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    const text = file ? readFileSync(join(dir, file), "utf8").trim() : `License: ${meta.license}`;
    parts.push(`${name} ${meta.version} (${meta.license})\n\n${text}\n`);
  }
  return `Third-party code bundled in this directory:\n\n${parts.join("\n" + "-".repeat(72) + "\n\n")}`;
}

async function main() {
  if (existsSync(out)) rmSync(out, { recursive: true });
  mkdirSync(out, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: { editor: "src/editor.js", diff: "src/diff.js" },
    bundle: true,
    splitting: true,
    format: "esm",
    minify: true,
    target: ["es2020"],
    outdir: out,
    chunkNames: "chunk-[hash]",
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
  });
  writeFileSync(join(out, "THIRD-PARTY-LICENSES.txt"), licenses(Object.keys(result.metafile.inputs)));
  const sizes = Object.fromEntries(
    Object.entries(result.metafile.outputs).map(([path, o]) => [relative(out, join(here, path)), o.bytes]),
  );
  const build = { sources: sourceHash(), files: sourceFiles(), esbuild: esbuild.version, sizes };
  writeFileSync(join(out, "BUILD.json"), JSON.stringify(build, null, 2) + "\n");
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  console.log(`built ${Object.keys(sizes).join(", ")} (${(total / 1024).toFixed(0)} KiB) into ${relative(process.cwd(), out)}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
