"""io.kestra.plugin.serdes.json JsonToToon and ToonToJson, run as a worker runs them; expected
TOON texts are the ones kestra-io/plugin-serdes' own tests assert for its encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.serdes_support import Serdes


@pytest.fixture
def sd(tmp_path: Path) -> Serdes:
    return Serdes(tmp_path)


CASES = [
    ({"id": 123, "name": "Ada", "active": True}, "id: 123\nname: Ada\nactive: true"),
    (
        {"users": [{"id": 1, "name": "Alice", "active": True}, {"id": 2, "name": "Bob",
                                                                "active": False}]},
        "users[2]{id,name,active}:\n  1,Alice,true\n  2,Bob,false",
    ),
    ({"items": [1, {"a": "x"}, "hello"]}, "items[3]:\n  - 1\n  - a: x\n  - hello"),
    (
        {"server": {"host": "localhost", "port": 8080, "tags": ["web", "api"]}},
        "server:\n  host: localhost\n  port: 8080\n  tags[2]: web,api",
    ),
    (
        {"urls": [{"id": 1, "url": "http://a:b"}, {"id": 2, "url": "https://example.com?q=a:b"}]},
        'urls[2]{id,url}:\n  1,"http://a:b"\n  2,"https://example.com?q=a:b"',
    ),
    ({"tags": [], "note": None}, "tags[0]:\nnote: null"),
    ({"message": "Hello 世界 👋", "tags": ["🎉", "🎊", "🎈"]},
     "message: Hello 世界 👋\ntags[3]: 🎉,🎊,🎈"),
    (
        {"items": [{"users": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}],
                    "status": "active"}]},
        "items[1]:\n  - users[2]{id,name}:\n      1,Ada\n      2,Bob\n    status: active",
    ),
    (
        [1.5, 1e20, 1e-7, -0.0, 100.0, "007", "", "true", " x", "a,b", "-x", "[1]", "a\tb"],
        '[13]: 1.5,100000000000000000000,0.0000001,0,100,"007","","true"," x","a,b","-x",'
        '"[1]","a\\tb"',
    ),
    ({"first name": {"x": {}}, "m": [[1, 2], [{"a": 1}], []]},
     '"first name":\n  x:\nm[3]:\n  - [2]: 1,2\n  - [1]:\n    - a: 1\n  - [0]:'),
]  # fmt: skip


@pytest.mark.parametrize(("value", "toon"), CASES)
def test_json_to_toon(sd: Serdes, value: object, toon: str) -> None:
    outputs, _ = sd.ok("json.JsonToToon", **{"from": sd.put("in.json", json.dumps(value))})
    assert sd.text(outputs["uri"]) == toon
    assert outputs["size"] == (len(value) if isinstance(value, list) else 1)
    assert outputs["uri"].endswith(".toon")


def test_toon_to_json(sd: Serdes) -> None:
    toon = "users[2]{id,name,active}:\n  1,Alice,true\n  2,Bob,false\nnote: null\nn: 1.50\ntags[0]:"
    outputs, _ = sd.ok("json.ToonToJson", **{"from": sd.put("in.toon", toon)})
    assert sd.text(outputs["uri"]) == (
        "{\n"
        '  "users" : [ {\n'
        '    "id" : 1,\n'
        '    "name" : "Alice",\n'
        '    "active" : true\n'
        "  }, {\n"
        '    "id" : 2,\n'
        '    "name" : "Bob",\n'
        '    "active" : false\n'
        "  } ],\n"
        '  "note" : null,\n'
        '  "n" : 1.50,\n'
        '  "tags" : [ ]\n'
        "}"
    )
    assert outputs["size"] == 2
    assert sd.convert("json.ToonToJson", "") == "{ }"
    error = sd.fail("json.ToonToJson", "a:\n   b: 1\n")
    assert error == "line 2: Invalid indentation: must be a multiple of 2 spaces"


@pytest.mark.parametrize(("value", "toon"), CASES[:8])
def test_toon_round_trips(sd: Serdes, value: object, toon: str) -> None:
    outputs, _ = sd.ok("json.ToonToJson", **{"from": sd.put("in.toon", toon)})
    assert json.loads(sd.text(outputs["uri"])) == value


def test_json_to_toon_needs_json(sd: Serdes) -> None:
    assert sd.fail("json.JsonToToon", "  ") == "Invalid JSON: empty input"
    assert sd.fail("json.JsonToToon", '{"a":}').startswith("line 1, column 6: invalid JSON")
