"""io.kestra.plugin.serdes.xml: IonToXml (Jackson's XmlMapper output) and XmlToIon (org.json's
conversion), run as a worker runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from executors import ion
from tests.unit.serdes_support import Serdes


@pytest.fixture
def sd(tmp_path: Path) -> Serdes:
    return Serdes(tmp_path)


def test_ion_to_xml(sd: Serdes) -> None:
    rows = (
        '{id:1,name:"a & <b>",tags:["x","y"],meta:{k:null,e:{}},at:2024-01-01T10:00:00Z,'
        "z:2024-01-01T10:00:00+05:00,f:1e7,d:1.50}\n7\n"
    )
    assert sd.convert("xml.IonToXml", rows, timeZoneId="Europe/Paris") == (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<items>\n"
        "  <item>\n"
        "    <id>1</id>\n"
        "    <name>a &amp; &lt;b></name>\n"
        "    <tags>x</tags>\n"
        "    <tags>y</tags>\n"
        "    <meta>\n"
        "      <k/>\n"
        "      <e/>\n"
        "    </meta>\n"
        "    <at>2024-01-01T10:00:00Z</at>\n"
        "    <z>2024-01-01T06:00:00+01:00</z>\n"
        "    <f>1.0E7</f>\n"
        "    <d>1.50</d>\n"
        "  </item>\n"
        "  <item>7</item>\n"
        "</items>"
    )
    outputs, _ = sd.ok("xml.IonToXml", **{"from": sd.put("in", ""), "rootName": "rows"})
    assert sd.text(outputs["uri"]) == "<?xml version='1.0' encoding='UTF-8'?>\n<rows/>"
    assert outputs["uri"].endswith(".xml")
    error = sd.fail("xml.IonToXml", '{a:1}\n{"first name":1}\n')
    assert error == "record 2: 'first name' is not an XML element name"


CATALOG = """<?xml version="1.0"?>
<catalog xmlns:x="http://x">
  <book id="007" x:lang="en">
    <title>Dune</title>
    <price>9.90</price>
    <stock>12</stock>
    <ok>TRUE</ok>
    <note><![CDATA[ 12 ]]></note>
    <mixed>a<b/>c</mixed>
    <empty/>
  </book>
  <book id="2"><title>Emma &amp; co</title><x:tag>t</x:tag></book>
  <other>x</other>
</catalog>"""


def test_xml_to_ion_whole_file(sd: Serdes) -> None:
    assert ion.loads(sd.convert("xml.XmlToIon", CATALOG)) == [
        {
            "catalog": {
                "xmlns:x": "http://x",
                "book": [
                    {
                        "id": "007", "x:lang": "en", "title": "Dune",
                        "price": ion.loads_one("9.90"), "stock": 12, "ok": True,
                        "note": " 12 ", "mixed": {"content": ["a", "c"], "b": ""}, "empty": "",
                    },
                    {"id": 2, "title": "Emma & co", "x:tag": "t"},
                ],
                "other": "x",
            }
        }
    ]  # fmt: skip
    # a root holding a list (what IonToXml writes) gives one record per element
    items = "<items><item><a>1</a></item><item><a>2</a></item></items>"
    assert sd.convert("xml.XmlToIon", items) == "{a:1}\n{a:2}\n"
    one = "<items><item><a>1</a></item></items>"
    assert sd.convert("xml.XmlToIon", one) == "{items:{item:{a:1}}}\n"
    forced = sd.convert("xml.XmlToIon", one, parserConfiguration={"forceList": ["item"]})
    assert forced == "{a:1}\n"
    assert sd.convert("xml.XmlToIon", "") == "{}\n"


def test_xml_to_ion_query_streams_records(sd: Serdes) -> None:
    assert sd.convert("xml.XmlToIon", CATALOG, query="/catalog/book").splitlines() == [
        '{id:"007",lang:"en",title:"Dune",price:9.90,stock:12,ok:true,note:" 12 ",'
        'mixed:{content:["a","c"],b:""},empty:""}',
        '{id:2,title:"Emma & co",tag:"t"}',
    ]
    assert sd.convert("xml.XmlToIon", CATALOG, query="/library/book") == ""
    assert sd.convert("xml.XmlToIon", CATALOG, query="/catalog").startswith('{book:[{id:"007"')


def test_xml_round_trip_and_errors(sd: Serdes) -> None:
    written, _ = sd.ok("xml.IonToXml", **{"from": sd.put("in", '{a:1,b:"x"}\n{a:2,b:"y"}\n')})
    outputs, _ = sd.ok("xml.XmlToIon", **{"from": written["uri"]})
    assert sd.text(outputs["uri"]) == '{a:1,b:"x"}\n{a:2,b:"y"}\n'
    assert outputs["size"] == 2
    assert (
        sd.fail("xml.XmlToIon", "<a>\n  <b></a>") == "line 2, column 8: invalid XML: mismatched tag"
    )
    error = sd.fail("xml.XmlToIon", "<a>\n<b>x</b>\n<c>", query="/a/b")
    assert error == "line 3, column 4: invalid XML: no element found"
    latin = sd.convert("xml.XmlToIon", "<a>\xe9</a>".encode("latin-1"), charset="ISO-8859-1")
    assert latin == '{a:"é"}\n'
