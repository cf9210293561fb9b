"""io.kestra.plugin.serdes.excel: IonToExcel and ExcelToIon, run as a worker runs them; the
workbooks are read and written with openpyxl to check them."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from tests.unit.serdes_support import Serdes


def naive(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def sd(tmp_path: Path) -> Serdes:
    return Serdes(tmp_path)


def _cells(sd: Serdes, uri: str) -> dict[str, list[list[object]]]:
    workbook = load_workbook(io.BytesIO(sd.read(uri)))
    return {
        sheet.title: [[c.value for c in row] for row in sheet.iter_rows()]
        for sheet in workbook.worksheets
    }


ROWS = (
    '{id:1,name:"a",ok:true,price:1.50,big:123456789012345678901234,day:2024-01-02,'
    'at:2024-01-02T23:30:00Z,local:LocalDateTime::"2024-01-02T12:00:00",'
    'zoned:ZonedDateTime::"2024-01-02T10:00:00+01:00[Europe/Paris]",tags:[1,2],'
    'f:"Formula:1+1",none:null}\n'
    '{id:2,name:"b",ok:false,price:2.,big:1,day:null,at:null,local:null,zoned:null,'
    'tags:[],f:"x",none:null}\n'
)


def test_ion_to_excel_cells(sd: Serdes) -> None:
    outputs, _ = sd.ok("excel.IonToExcel", **{"from": sd.put("in.ion", ROWS)})
    assert outputs["size"] == 2
    assert outputs["uri"].endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(sd.read(outputs["uri"])))
    sheet = workbook["Sheet"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == [
        "id", "name", "ok", "price", "big", "day", "at", "local", "zoned", "tags", "f", "none",
    ]  # fmt: skip
    assert rows[1] == [
        1, "a", True, 1.5, "123456789012345678901234",
        naive("2024-01-02"), naive("2024-01-02"), naive("2024-01-02T12:00"),
        "2024-01-02T10:00+01:00[Europe/Paris]", "[1, 2]", "=1+1", "null",
    ]  # fmt: skip
    assert rows[2][:6] == [2, "b", False, 2, 1, "null"]
    assert sheet["F2"].number_format == "yyyy-MM-dd"
    # an instant is the date it falls on in timeZoneId
    paris, _ = sd.ok(
        "excel.IonToExcel",
        **{"from": sd.put("in.ion", ROWS), "timeZoneId": "Europe/Paris", "styles": False},
    )
    sheet = load_workbook(io.BytesIO(sd.read(paris["uri"])))["Sheet"]
    assert sheet["G2"].value == 45294  # 2024-01-03, unstyled: the serial number
    assert sheet["G2"].number_format == "General"


def test_ion_to_excel_sheets_and_header(sd: Serdes) -> None:
    first = sd.put("a.ion", "{a:1}\n{a:2}\n")
    second = sd.put("b.ion", '["x","y"]\n')
    outputs, _ = sd.ok("excel.IonToExcel", **{"from": {"Sheet_1": first, "Sheet_2": first}})
    assert _cells(sd, outputs["uri"]) == {
        "Sheet_1": [["a"], [1], [2]],
        "Sheet_2": [["a"], [1], [2]],
    }
    assert outputs["size"] == 4
    lists, _ = sd.ok("excel.IonToExcel", **{"from": second, "header": False, "sheetsTitle": "Data"})
    assert _cells(sd, lists["uri"]) == {"Data": [["x", "y"]]}
    outcome, _ = sd.run("excel.IonToExcel", **{"from": second})
    assert outcome.error == "sheet 'Sheet', record 1: Invalid data of type List with header"
    outcome, _ = sd.run("excel.IonToExcel", **{"from": {"a/b": first}})
    assert "invalid sheet title 'a/b'" in (outcome.error or "")
    outcome, _ = sd.run(
        "excel.IonToExcel", **{"from": sd.put("c.ion", '{a:"' + "x" * 40000 + '"}\n')}
    )
    assert "sheet 'Sheet', row 2: a text of 40000 characters" in (outcome.error or "")


def _workbook(sd: Serdes) -> str:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "People"
    sheet.append(["id", "name", None, "born", "ratio"])
    sheet.append([1, "Ann", True, date(1990, 5, 17), 0.25])
    sheet.append([2, "Bob", False, naive("2001-01-02T03:04"), 1234.5])
    sheet.append([])
    sheet.append([3, None, None, None, None])
    sheet["E2"].number_format = "0.00%"
    sheet["E3"].number_format = "#,##0.00"
    other = workbook.create_sheet("Other")
    other.append(["title row"])
    other.append(["k", "v"])
    other.append(["x", 1])
    data = io.BytesIO()
    workbook.save(data)
    return sd.put("in.xlsx", data.getvalue())


def test_excel_to_ion_values(sd: Serdes) -> None:
    uri = _workbook(sd)
    outcome, _ = sd.run("excel.ExcelToIon", **{"from": uri})
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.metrics == {"sheets": 2}
    assert outcome.outputs["size"] == 5
    uris = outcome.outputs["uris"]
    assert sorted(uris) == ["Other", "People"]
    assert sd.text(uris["People"]).splitlines() == [
        '{id:1e0,name:"Ann",Column2:true,born:"1990-05-17",ratio:0.25e0}',
        '{id:2e0,name:"Bob",Column2:false,born:"2001-01-02",ratio:1234.5e0}',
        "{id:3e0,name:null,Column2:null,born:null,ratio:null}",
    ]
    assert sd.text(uris["Other"]).splitlines() == ["{'title row':\"k\"}", "{'title row':\"x\"}"]


def test_excel_to_ion_options(sd: Serdes) -> None:
    uri = _workbook(sd)
    outputs, _ = sd.ok(
        "excel.ExcelToIon",
        **{"from": uri, "sheetsTitle": ["Other"], "skipRows": 1},
    )
    assert list(outputs["uris"]) == ["Other"]
    assert sd.text(outputs["uris"]["Other"]) == '{k:"x",v:1e0}\n'
    outputs, _ = sd.ok(
        "excel.ExcelToIon",
        **{"from": uri, "sheetsTitle": ["People"], "header": False, "skipEmptyRows": True,
           "valueRender": "FORMATTED_VALUE", "dateTimeRender": "FORMATTED_STRING"},
    )  # fmt: skip
    assert sd.text(outputs["uris"]["People"]).splitlines() == [
        '["id","name",null,"born","ratio"]',
        '["1","Ann","TRUE","1990-05-17","25.00%"]',
        '["2","Bob","FALSE","2001-01-02 3:04:00","1,234.50"]',
        '["3",null,null,null,null]',
    ]
    serial, _ = sd.ok(
        "excel.ExcelToIon",
        **{"from": uri, "sheetsTitle": "People", "dateTimeRender": "SERIAL_NUMBER"},
    )
    assert "born:33010e0" in sd.text(serial["uris"]["People"])


def test_excel_to_ion_refuses_what_is_not_a_workbook(sd: Serdes) -> None:
    error = sd.fail("excel.ExcelToIon", "id,name\n1,a\n")
    assert error.startswith("the source is not a readable Excel (.xlsx) file")
