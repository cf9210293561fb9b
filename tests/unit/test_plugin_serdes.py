"""io.kestra.plugin.serdes text formats (CSV, JSON, YAML), run as a worker runs them.

Expected outputs are what Kestra's classes produce (FastCSV, Jackson's mappers), as read in
kestra-io/plugin-serdes; each module's docstring lists the differences we chose.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from executors import ion
from tests.unit.serdes_support import Serdes, warnings


@pytest.fixture
def sd(tmp_path: Path) -> Serdes:
    return Serdes(tmp_path)


ROWS = (
    '{id:1,name:"a",price:1.50,ratio:1e7,at:2024-01-01T10:00:00.123Z,day:2024-01-02,'
    'zoned:ZonedDateTime::"2024-07-01T10:00:00+02:00[Europe/Paris]",'
    'local:LocalDateTime::"2024-01-01T08:30:00",clock:LocalTime::"10:15:00",'
    'tags:["x",2],meta:{k:true},none:null}\n'
    '{id:2,name:"b,\\"c\\"",price:2.,ratio:0.5e0,at:null,day:null,zoned:null,local:null,'
    "clock:null,tags:[],meta:{},none:null}\n"
)


# ------------------------------------------------------------------------------- IonToCsv


def test_ion_to_csv_writes_kestra_text(sd: Serdes) -> None:
    assert sd.convert("csv.IonToCsv", ROWS) == (
        "id,name,price,ratio,at,day,zoned,local,clock,tags,meta,none\n"
        "1,a,1.50,1.0E7,2024-01-01T10:00:00.123Z,2024-01-02,2024-07-01T08:00:00.000Z,"
        '2024-01-01T08:30:00.000,10:15:00,"[x, 2]",{k=true},\n'
        '2,"b,""c""",2,0.5,,,,,,[],{},\n'
    )


def test_ion_to_csv_options(sd: Serdes) -> None:
    text = sd.convert(
        "csv.IonToCsv",
        ROWS,
        header=False,
        fieldSeparator=";",
        textDelimiter="'",
        lineDelimiter="\r\n",
        quoteMode="NON_NUMERIC",
        dateFormat="dd/MM/yyyy",
        timeFormat="HH'h'mm[XXX]",
        dateTimeFormat="yyyy-MM-dd HH:mm[ XXX]",
        timeZoneId="Europe/Paris",
    )
    assert text.split("\r\n") == [
        "1;'a';1.50;'1.0E7';'2024-01-01 10:00 Z';'02/01/2024';'2024-07-01 10:00 +02:00';"
        "'2024-01-01 08:30';'10h15';'[x, 2]';'{k=true}';",
        "2;'b,\"c\"';2;0.5;;;;;;'[]';'{}';",
        "",
    ]
    always = sd.convert("csv.IonToCsv", '{a:1,b:null,c:""}\n', alwaysDelimitText=True)
    assert always == '"a","b","c"\n"1","",""\n'
    # quoteMode wins over alwaysDelimitText; a first field starting with '#' is quoted
    required = sd.convert(
        "csv.IonToCsv", '{a:"#x",b:"#y"}\n', alwaysDelimitText=True, quoteMode="REQUIRED"
    )
    assert required == 'a,b\n"#x",#y\n'


def test_ion_to_csv_charset_and_list_rows(sd: Serdes) -> None:
    outputs, _ = sd.ok(
        "csv.IonToCsv", **{"from": sd.put("in", '{v:"café"}\n'), "charset": "ISO-8859-1"}
    )
    assert sd.read(outputs["uri"]) == b"v\ncaf\xe9\n"
    assert outputs["uri"].endswith(".csv")
    assert sd.convert("csv.IonToCsv", '["a",1]\n[null]\n3\n', header=False) == "a,1\n\n"
    error = sd.fail("csv.IonToCsv", '{a:1}\n["a"]\n')
    assert error == "record 2: Invalid data of type List with header"


def test_ion_to_csv_user_mistakes_are_named(sd: Serdes) -> None:
    bad_ion = sd.fail("csv.IonToCsv", '{a:1}\n{a:"x\n')
    assert bad_ion.startswith("the source is not a valid ION file: line 2: unterminated string")
    assert "lineDelimiter" in sd.fail("csv.IonToCsv", "{a:1}\n", lineDelimiter=";")
    assert "fieldSeparator" in sd.fail("csv.IonToCsv", "{a:1}\n", fieldSeparator=";;")
    assert "quoteMode" in sd.fail("csv.IonToCsv", "{a:1}\n", quoteMode="SOMETIMES")
    assert "charset" in sd.fail("csv.IonToCsv", "{a:1}\n", charset="klingon")
    assert "timeZoneId" in sd.fail("csv.IonToCsv", "{a:1}\n", timeZoneId="Mars/Olympus")
    assert "pattern letter 'q'" in sd.fail("csv.IonToCsv", "{a:1}\n", dateFormat="qq")
    outcome, _ = sd.run("csv.IonToCsv", **{"from": "kestra:///company/team/nothing/here.ion"})
    assert (
        outcome.error
        == "internal storage file kestra:///company/team/nothing/here.ion does not exist"
    )


# ------------------------------------------------------------------------------- CsvToIon


def test_csv_to_ion_with_and_without_header(sd: Serdes) -> None:
    data = 'id,name,note\n1,"Smith, J",\\N\n2,"multi\nline","say ""hi"""\n'
    assert sd.convert("csv.CsvToIon", data) == (
        '{id:"1",name:"Smith, J",note:null}\n{id:"2",name:"multi\\nline",note:"say \\"hi\\""}\n'
    )
    assert sd.convert("csv.CsvToIon", "a;b\n1;2\n", header=False, fieldSeparator=";") == (
        '["a","b"]\n["1","2"]\n'
    )
    assert sd.convert("csv.CsvToIon", "a|b\n'x|y'|2\n", fieldSeparator="|", textDelimiter="'") == (
        '{a:"x|y",b:"2"}\n'
    )


def test_csv_to_ion_charset_bom_skip_rows(sd: Serdes) -> None:
    assert sd.convert("csv.CsvToIon", b"\xef\xbb\xbfa\n\xc3\xa9\n") == '{a:"é"}\n'
    assert sd.convert("csv.CsvToIon", b"a\n\xe9\n", charset="ISO-8859-1") == '{a:"é"}\n'
    assert sd.convert("csv.CsvToIon", "a\n1\n2\n3\n", skipRows=2) == '{a:"3"}\n'
    outputs, _ = sd.ok(
        "csv.CsvToIon", **{"from": sd.put("in", "a\n1\n\n2\n"), "skipEmptyRows": True}
    )
    assert outputs["size"] == 2
    error = sd.fail("csv.CsvToIon", b"a\n\xff\n")
    assert error.startswith("the file is not valid utf-8-sig text")


def test_csv_to_ion_bad_lines(sd: Serdes) -> None:
    data = "a,b\n1,2\n\n3\n4,5\n"
    error = sd.fail("csv.CsvToIon", data)
    assert error == "line 3: Bad line encountered (field count mismatch): Expected 2, got 1 fields."
    outputs, ctx = sd.ok("csv.CsvToIon", **{"from": sd.put("in", data), "onBadLines": "WARN"})
    assert sd.text(outputs["uri"]) == '{a:"1",b:"2"}\n{a:"4",b:"5"}\n'
    assert outputs["size"] == 2
    assert warnings(ctx) == [
        "line 3: Bad line encountered (field count mismatch): Expected 2, got 1 fields.",
        "line 4: Bad line encountered (field count mismatch): Expected 2, got 1 fields.",
    ]
    _, ctx = sd.ok("csv.CsvToIon", **{"from": sd.put("in", data), "onBadLines": "skip"})
    assert warnings(ctx) == []


def test_csv_to_ion_malformed_quotes_name_the_line(sd: Serdes) -> None:
    data = 'a,b\n"x\ny",1\n"bad"z,2\n3,4\n'
    assert sd.fail("csv.CsvToIon", data).startswith("line 4, column 1: malformed CSV record")
    unclosed = sd.fail("csv.CsvToIon", 'a,b,c\n1,2,"open\n')
    assert unclosed.startswith("line 2, column 3: malformed CSV record")
    relaxed = sd.convert("csv.CsvToIon", data, allowExtraCharsAfterClosingQuote=True)
    assert relaxed.splitlines()[1] == '{a:"badz",b:"2"}'
    outputs, ctx = sd.ok("csv.CsvToIon", **{"from": sd.put("in", data), "onBadLines": "WARN"})
    assert outputs["size"] == 2
    assert warnings(ctx)[0].startswith("Bad line encountered (skipped): line 4, column 1:")
    long_field = sd.fail("csv.CsvToIon", "a,b\n1,2\n3,12345\n", maxFieldSize=4)
    assert long_field == "line 3, column 2: the field exceeds maxFieldSize (4 characters)"


def test_csv_to_ion_empty_header_names(sd: Serdes) -> None:
    data = "a,,b,,\n1,2,3,4,5\n"
    outputs, ctx = sd.ok("csv.CsvToIon", **{"from": sd.put("in", data)})
    assert sd.text(outputs["uri"]) == '{a:"1",\'\':"2",b:"3"}\n'
    assert warnings(ctx) == [
        "Dropped 2 trailing unnamed header column(s); their values are not emitted. "
        "Set onEmptyHeader=RENAME to keep them."
    ]
    renamed = sd.convert("csv.CsvToIon", "col_1,,\n1,2,3\n", onEmptyHeader="RENAME")
    assert renamed == '{col_1:"1",col_1_2:"2",col_2:"3"}\n'


# ------------------------------------------------------------------------------------ JSON


def test_ion_to_json_lines_array_and_single(sd: Serdes) -> None:
    lines = sd.convert("json.IonToJson", ROWS)
    assert lines.splitlines() == [
        '{"id":1,"name":"a","price":1.50,"ratio":1.0E7,"at":"2024-01-01T10:00:00.123Z",'
        '"day":"2024-01-02","zoned":"2024-07-01T10:00:00+02:00[Europe/Paris]",'
        '"local":"2024-01-01T08:30:00","clock":"10:15:00","tags":["x",2],"meta":{"k":true}}',
        '{"id":2,"name":"b,\\"c\\"","price":2,"ratio":0.5,"tags":[],"meta":{}}',
    ]
    outputs, _ = sd.ok(
        "json.IonToJson", **{"from": sd.put("in", "{a:1}\n{b:[null]}\n"), "newLine": False}
    )
    assert sd.text(outputs["uri"]) == '[{"a":1},{"b":[null]}]'
    assert outputs["uri"].endswith(".json")
    assert sd.convert("json.IonToJson", "{a:nan}\n", newLine=False) == '{"a":"NaN"}'
    assert sd.convert("json.IonToJson", "", newLine=False) == ""


def test_ion_to_json_keeps_annotations_on_request(sd: Serdes) -> None:
    data = '{d:base64::"QQ==",t:2024-01-01T10:00:00Z,n:null}\n'
    kept = sd.convert("json.IonToJson", data, shouldKeepAnnotations=True, timeZoneId="Europe/Paris")
    assert kept == (
        '{"d":{"ion_annotations":["base64"],"value":"QQ=="},'
        '"t":"2024-01-01T11:00+01:00[Europe/Paris]","n":null}\n'
    )
    plain = sd.convert("json.IonToJson", data, timeZoneId="+02:00")
    assert plain == '{"d":"QQ==","t":"2024-01-01T10:00:00Z"}\n'
    zoned = sd.convert("json.IonToJson", "{t:2024-01-01T10:00:00+05:00}\n", timeZoneId="+02:00")
    assert zoned == '{"t":"2024-01-01T07:00:00+02:00"}\n'


def test_json_to_ion(sd: Serdes) -> None:
    lines = (
        '{"a":1,"b":1.5,"c":"x","d":null,"e":[true],"big":123456789012345678901234}\n\nnull\n[1]\n'
    )
    outputs, _ = sd.ok("json.JsonToIon", **{"from": sd.put("in", lines)})
    assert sd.text(outputs["uri"]) == (
        '{a:1,b:1.5e0,c:"x",d:null,e:[true],big:123456789012345678901234}\n[1]\n'
    )
    assert outputs["size"] == 2
    array = sd.convert("json.JsonToIon", '[{"a":1},\n {"a":2.0e2}] trailing', newLine=False)
    assert array == "{a:1}\n{a:200e0}\n"
    assert sd.convert("json.JsonToIon", '{"a":{"b":[]}}', newLine=False) == "{a:{b:[]}}\n"
    error = sd.fail("json.JsonToIon", '{"a":1}\n{"a":,}\n')
    assert error == "line 2, column 6: invalid JSON: Expecting value"
    error = sd.fail("json.JsonToIon", '[{"a":1},\n{"a" 2}]', newLine=False)
    assert error == "line 2, column 6: invalid JSON: Expecting ':' delimiter"
    assert "NaN is not valid JSON" in sd.fail("json.JsonToIon", '{"a":NaN}\n')


def test_json_to_jsonl(sd: Serdes) -> None:
    assert (
        sd.convert("json.JsonToJsonl", '[{"a":1,"b":null}, 2, [3]]') == '{"a":1,"b":null}\n2\n[3]\n'
    )
    assert sd.convert("json.JsonToJsonl", '{"a":1}\n{"a":2} {"a":1.0}') == (
        '{"a":1}\n{"a":2}\n{"a":1.0}\n'
    )
    assert sd.convert("json.JsonToJsonl", "  ") == ""
    error = sd.fail("json.JsonToJsonl", '"text"')
    assert error == "Invalid JSON format. Expected JSON array or object, but found: VALUE_STRING"


# ------------------------------------------------------------------------------------ YAML


def test_ion_to_yaml(sd: Serdes) -> None:
    one = sd.convert("yaml.IonToYaml", '{a:1,b:"yes",c:"x\\ny",d:null,e:[1e7,2.50],f:2024-01-02}\n')
    assert one == 'a: 1\nb: "yes"\nc: |-\n  x\n  y\ne:\n- 1.0E7\n- 2.50\nf: 2024-01-02\n\n'
    several = sd.convert("yaml.IonToYaml", '{a:"1"}\n[x]\n')
    assert several == '---\na: "1"\n\n---\n- x\n\n'


def test_yaml_to_ion(sd: Serdes) -> None:
    data = "a: 1\nb: 2024-01-01\nc: [yes, 1.5, null]\n---\n---\n- x\n"
    outputs, _ = sd.ok("yaml.YamlToIon", **{"from": sd.put("in", data)})
    assert sd.text(outputs["uri"]) == '{a:1,b:"2024-01-01",c:[true,1.5e0,null]}\n["x"]\n'
    assert outputs["size"] == 2
    error = sd.fail("yaml.YamlToIon", "a: 1\nb: [\n")
    assert error.startswith("line 3, column 1: invalid YAML")


def test_json_to_yaml_and_yaml_to_json(sd: Serdes) -> None:
    assert sd.convert("yaml.JsonToYaml", '{"a":1,"b":null}') == "a: 1\n"
    assert sd.convert("yaml.JsonToYaml", '[{"a":1},{"a":"2"}]') == '---\na: 1\n\n---\na: "2"\n\n'
    assert sd.convert("yaml.JsonToYaml", '{"a":1}\n\n{"a":2}\n', jsonl=True).count("---") == 2
    assert sd.convert("yaml.YamlToJson", "a: 1\nb: null\n") == '{"a":1}'
    assert sd.convert("yaml.YamlToJson", "- 1\n- 2\n") == "[[1,2]]"
    assert sd.convert("yaml.YamlToJson", "a: 1\n---\nb: x\n") == '[{"a":1},{"b":"x"}]'
    assert sd.convert("yaml.YamlToJson", "") == "{}"
    assert sd.convert("yaml.YamlToJson", "a: 1\n---\nb: x\n", jsonl=True) == '{"a":1}\n{"b":"x"}\n'


# ------------------------------------------------------------------------ shared behaviour


def test_a_killed_conversion_stops(sd: Serdes) -> None:
    task = {"id": "c", "type": "io.kestra.plugin.serdes.json.IonToJson"}
    task["from"] = sd.put("big.ion", "{a:1}\n" * 5000)
    ctx = sd.context(task)
    ctx.cancelled.set()
    outcome = asyncio.run(sd.registry.run(task, ctx))
    assert outcome.state == "KILLED"
    assert not list(Path(sd.storage.root).rglob("*.tmp"))


def test_results_are_ion_that_reads_back(sd: Serdes) -> None:
    outputs, _ = sd.ok("csv.CsvToIon", **{"from": sd.put("in", "a\n1\n")})
    assert ion.loads(sd.text(outputs["uri"])) == [{"a": "1"}]
    assert outputs["uri"].startswith("kestra:///company/team/serdes/executions/ex-1/tasks/convert/")


# ------------------------------------------------------------------ how flows use the types

FLOW = """
id: serdes_pipeline
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: csv_to_ion
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ inputs.file }}"
  - id: to_json
    type: io.kestra.plugin.serdes.json.IonToJson
    from: "{{ outputs.csv_to_ion.uri }}"
    newLine: false
  - id: back_to_ion
    type: io.kestra.plugin.serdes.json.JsonToIon
    from: "{{ outputs.to_json.uri }}"
    newLine: false
  - id: to_csv
    type: io.kestra.plugin.serdes.csv.IonToCsv
    from: "{{ outputs.back_to_ion.uri }}"
    quoteMode: NON_NUMERIC
  - id: to_excel
    type: io.kestra.plugin.serdes.excel.IonToExcel
    from:
      Sheet_1: "{{ outputs.csv_to_ion.uri }}"
      Sheet_2: "{{ outputs.back_to_ion.uri }}"
  - id: to_avro
    type: io.kestra.plugin.serdes.avro.IonToAvro
    from: "{{ outputs.back_to_ion.uri }}"
    schema: |
      {"type": "record", "name": "Row", "fields": [
        {"name": "id", "type": "long"}, {"name": "city", "type": ["null", "string"]}]}
"""


def test_a_flow_chains_the_conversions_through_internal_storage(sd: Serdes) -> None:
    from engine.flows import flow_to_dict, load_flow

    flow = flow_to_dict(load_flow(FLOW))  # the flow validates with every property
    variables: dict[str, object] = {
        "inputs": {"file": sd.put("cities.csv", "id,city\n1,Lyon\n2,\\N\n")},
        "outputs": {},
    }
    for task in flow["tasks"]:
        ctx = sd.context(task, variables)
        outcome = asyncio.run(sd.registry.run(task, ctx))
        assert outcome.state == "SUCCESS", (task["id"], outcome.error)
        variables["outputs"][task["id"]] = outcome.outputs  # type: ignore[index]
    outputs = variables["outputs"]
    assert isinstance(outputs, dict)
    assert sd.text(outputs["to_json"]["uri"]) == '[{"id":"1","city":"Lyon"},{"id":"2"}]'
    assert sd.text(outputs["back_to_ion"]["uri"]) == '{id:"1",city:"Lyon"}\n{id:"2"}\n'
    assert sd.text(outputs["to_csv"]["uri"]) == '"id","city"\n1,"Lyon"\n2\n'
    assert outputs["to_excel"]["size"] == 4
    assert outputs["to_avro"]["size"] == 2


# -------------------------------------------------------------------------------- Markdown

MARKDOWN = (
    "# Title\n\nSome *text* and `code` &amp; <b>raw</b>\nnext line  \nhard\n\n"
    "- a\n- b [link](http://x) ![alt](i.png)\n\n```\nblock\n```\n"
)


def test_markdown_to_html_and_text(sd: Serdes) -> None:
    outcome, _ = sd.run("markdown.MarkdownToHtml", **{"from": sd.put("in.md", MARKDOWN)})
    assert outcome.state == "SUCCESS", outcome.error
    html = sd.text(outcome.outputs["uri"])
    assert html == (
        "<h1>Title</h1>\n<p>Some <em>text</em> and <code>code</code> &amp; <b>raw</b>\n"
        'next line<br />\nhard</p>\n<ul>\n<li>a</li>\n<li>b <a href="http://x">link</a> '
        '<img src="i.png" alt="alt" /></li>\n</ul>\n<pre><code>block\n</code></pre>\n'
    )
    assert list(outcome.outputs) == ["uri"]
    assert outcome.outputs["uri"].endswith(".html")
    assert outcome.metrics == {"bytes": len(html)}
    text = sd.convert("markdown.MarkdownToText", MARKDOWN)
    # the inline code is dropped and each list item ends twice, as Kestra's visitor does
    assert text == "Title\nSome text and  & raw next line\nhard\n- a\n\n- b link alt"
