"""The flow editor's server side without servers: the check endpoint (problems, expression
warnings, task tree), the schema it completes from, and its bundle served from the package
(ETag, gzip, CSP-safe, built from the committed sources and lock file)."""

from __future__ import annotations

import gzip
import hashlib
import json
import pathlib
import re

import httpx
import pytest

from engine.api import create_app
from engine.dashboard.editor_api import check_flow, schema_path
from engine.dashboard.pages import HEADERS, STATIC
from engine.settings import load_settings
from schemas.flow.jsonschema import render

EDITOR_SRC = pathlib.Path(__file__).resolve().parents[2] / "engine" / "dashboard" / "editor"
BUNDLE = STATIC / "editor"

VALID = """\
id: checked
namespace: company.team
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.name | nosuchfilter }}"
  - id: fan
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: a
        type: io.kestra.plugin.core.debug.Return
        format: x
"""


@pytest.fixture
async def client() -> httpx.AsyncClient:
    # The lifespan (Kafka, Postgres) is not run: nothing here needs them.
    app = create_app(load_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


def test_a_valid_flow_has_its_graph_and_its_expression_warnings() -> None:
    out = check_flow(VALID)
    assert (out.valid, out.namespace, out.id, out.problems) == (True, "company.team", "checked", [])
    assert [(w.line, w.path) for w in out.warnings] == [(6, "tasks[0].message")]
    assert "nosuchfilter" in out.warnings[0].message
    assert out.graph is not None
    assert [n.id for n in out.graph.tasks] == ["greet", "fan"]
    assert [b.nodes[0].id for b in out.graph.tasks[1].branches] == ["a"]


def test_an_invalid_flow_has_located_problems_and_no_graph() -> None:
    out = check_flow(VALID.replace("debug.Return", "debug.Retrun"))
    assert not out.valid
    assert out.graph is None
    assert [(p.line, p.column) for p in out.problems] == [(11, 15)]
    assert "Retrun" in out.problems[0].message
    assert len(out.warnings) == 1  # the expression is still looked at
    broken = check_flow('id: x\nnamespace: y\ntasks:\n  - id: "unterminated\n')
    assert [p.line for p in broken.problems] == [4]
    assert broken.warnings == []


async def test_check_endpoint_answers_what_check_flow_says(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/dashboard/flows/check",
        content=VALID,
        headers={"content-type": "application/x-yaml"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == check_flow(VALID).model_dump(mode="json")
    bad = await client.post("/api/v1/dashboard/flows/check", content=b"\xff\xfe")
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"


async def test_schema_is_the_committed_file_with_etag_and_gzip(client: httpx.AsyncClient) -> None:
    assert schema_path().read_text() == render()  # the file editors use is current
    r = await client.get("/api/v1/dashboard/schemas/flow", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/schema+json")
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < len(schema_path().read_bytes()) / 10
    assert r.json() == json.loads(schema_path().read_text())
    again = await client.get(
        "/api/v1/dashboard/schemas/flow", headers={"if-none-match": r.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    plain = await client.get("/api/v1/dashboard/schemas/flow", headers={"accept-encoding": "br"})
    assert "content-encoding" not in plain.headers
    assert plain.content == schema_path().read_bytes()


async def test_the_bundle_is_served_with_the_pages_headers(client: httpx.AsyncClient) -> None:
    for name in ("editor.js", "diff.js"):
        r = await client.get(f"/ui/editor/{name}", headers={"accept-encoding": "gzip"})
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
        assert r.headers["content-encoding"] == "gzip"
        # Every chunk the entry imports is in the package too.
        chunks = re.findall(r'from"\./(chunk-[A-Z0-9]+\.js)"', r.text)
        assert chunks, name
        for chunk in chunks:
            assert (await client.get(f"/ui/editor/{chunk}")).status_code == 200, chunk
        same = await client.get(f"/ui/editor/{name}", headers={"if-none-match": r.headers["etag"]})
        assert same.status_code == 304
    assert (await client.get("/ui/editor/BUILD.json")).status_code == 404  # not a page asset
    page = await client.get("/ui/js/flows.js")
    assert '"../editor/editor.js"' in page.text


def test_the_bundle_is_built_from_the_committed_sources() -> None:
    """BUILD.json's hash covers the sources and the lock file (build.mjs computes it the same
    way): a source changed without `make dashboard-assets` fails here, with no node needed."""
    build = json.loads((BUNDLE / "BUILD.json").read_text())
    digest = hashlib.sha256()
    for name in build["files"]:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update((EDITOR_SRC / name).read_bytes())
        digest.update(b"\0")
    sources = sorted(
        ["build.mjs", "package-lock.json"]
        + [f"src/{p.name}" for p in (EDITOR_SRC / "src").glob("*.js")]
    )
    assert build["files"] == sources, "a source file was added or removed: make dashboard-assets"
    assert build["sources"] == digest.hexdigest(), "the bundle is stale: make dashboard-assets"
    shipped = {p.name for p in BUNDLE.glob("*.js")}
    assert shipped == set(build["sizes"]), "files in static/editor/ that the build did not make"


def test_the_bundle_needs_no_eval_and_stays_small() -> None:
    total = 0
    for path in BUNDLE.glob("*.js"):
        body = path.read_text()
        # The page's CSP has no 'unsafe-eval': nothing may compile code from strings.
        assert "eval(" not in body, path.name
        assert "new Function" not in body, path.name
        assert "Worker(" not in body, path.name
        total += len(gzip.compress(path.read_bytes()))
    # CodeMirror 6 with YAML, completion, lint, search and merge: ~150 KB gzipped. A bundle
    # that grows past this pulled in something big by mistake (Monaco is ~1 MB).
    assert total < 250_000, total
    licenses = (BUNDLE / "THIRD-PARTY-LICENSES.txt").read_text()
    assert "@codemirror/view" in licenses
    assert "MIT" in licenses
