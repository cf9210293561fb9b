"""executors.ion: Kestra's ION text files, value by value.

The expected texts are what Kestra's ION mapper (Jackson's IonObjectMapper over ion-java's
text writer, plus Kestra's IonModule) writes for the equivalent Java values, and what its
IonParser reads back.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from executors import ion

PARIS = ZoneInfo("Europe/Paris")

# (Python value, Kestra's text)
WRITTEN: list[tuple[Any, str]] = [
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (42, "42"),
    (-7, "-7"),
    (2**70, "1180591620717411303424"),
    (1.5, "1.5e0"),
    (1.0, "1e0"),
    (100.0, "100e0"),
    (0.001, "0.001e0"),
    (1e7, "1.0e7"),
    (1.5e-5, "1.5e-5"),
    (0.0, "0e0"),
    (-2.25, "-2.25e0"),
    (math.inf, "+inf"),
    (-math.inf, "-inf"),
    (Decimal("1.50"), "1.50"),
    (Decimal("10"), "10."),
    (Decimal("0.000001"), "0.000001"),
    (Decimal("1E-7"), "1d-7"),
    (Decimal("1.2E+4"), "12d3"),
    (Decimal("-3.1"), "-3.1"),
    ("text", '"text"'),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'),
    ("a\nb\tc\x00\x01\x7f\x85", '"a\\nb\\tc\\0\\x01\\x7f\\x85"'),
    ("café ✓", '"café ✓"'),
    (b"\x00\xffab", "{{AP9hYg==}}"),
    ({"a": 1, "b c": "x", "null": None}, "{a:1,'b c':\"x\",'null':null}"),
    ({"true": 1, "$1": 2, "_ok$": 3, "it's": 4}, "{'true':1,'$1':2,_ok$:3,'it\\'s':4}"),
    ([1, [2, None], {}], "[1,[2,null],{}]"),
    ((1, 2), "[1,2]"),
    (datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC), "2024-01-01T10:00:00.123Z"),
    (datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01T00:00:00.000Z"),
    (
        datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=2))),
        'OffsetDateTime::"2024-01-01T10:00:00+02:00"',
    ),
    (
        datetime(2024, 7, 1, 10, 30, 0, 500000, tzinfo=PARIS),
        'ZonedDateTime::"2024-07-01T10:30:00.5+02:00[Europe/Paris]"',
    ),
    (datetime.fromisoformat("2024-01-01T10:00:05"), 'LocalDateTime::"2024-01-01T10:00:05"'),
    (date(2024, 2, 29), "2024-02-29"),
    (time(10, 0), 'LocalTime::"10:00:00"'),
    (time(10, 0, 1, 250000), 'LocalTime::"10:00:01.25"'),
    (time(10, 0, tzinfo=timezone(timedelta(hours=-5))), 'OffsetTime::"10:00:00-05:00"'),
]


@pytest.mark.parametrize(("value", "text"), WRITTEN)
def test_each_value_is_written_as_kestra_writes_it(value: Any, text: str) -> None:
    assert ion.dumps(value) == text


def test_nan_is_written_and_read() -> None:
    assert ion.dumps(math.nan) == "nan"
    assert math.isnan(ion.loads_one("nan"))


# Values whose text reads back to an equal value (tuples and midnight-UTC instants do not).
ROUND_TRIP = [
    value
    for value, _ in WRITTEN
    if not isinstance(value, tuple) and value != datetime(2024, 1, 1, tzinfo=UTC)
]


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_written_values_read_back_equal(value: Any) -> None:
    read = ion.loads_one(ion.dumps(value))
    if isinstance(value, datetime) and value.tzinfo is UTC:
        # Kestra's instants keep milliseconds
        assert read == value.replace(microsecond=value.microsecond // 1000 * 1000)
    else:
        assert read == value
        assert type(read) is type(value)


def test_temporal_values_keep_their_kind_and_zone() -> None:
    zoned = ion.loads_one('ZonedDateTime::"2024-07-01T10:30:00+02:00[Europe/Paris]"')
    assert zoned.tzinfo == PARIS
    offset = ion.loads_one('OffsetDateTime::"2024-01-01T10:00:00.123456789+02:00"')
    assert offset.utcoffset() == timedelta(hours=2)
    assert offset.microsecond == 123456  # Java's nanoseconds truncated to microseconds
    assert ion.loads_one('Instant::"2024-01-01T10:00:00Z"') == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert ion.loads_one('LocalDate::"2024-01-01"') == date(2024, 1, 1)


def test_timestamps_read_as_kestra_reads_them() -> None:
    # UTC (or unknown offset) at exact midnight: a LocalDate; otherwise an instant.
    assert ion.loads_one("2024-01-01T00:00:00.000Z") == date(2024, 1, 1)
    assert ion.loads_one("2024-01-01T00:00-00:00") == date(2024, 1, 1)
    assert ion.loads_one("2024-01-01") == date(2024, 1, 1)
    assert ion.loads_one("2024T") == date(2024, 1, 1)
    assert ion.loads_one("2024-01-01T10:15:30.5Z") == datetime(
        2024, 1, 1, 10, 15, 30, 500000, tzinfo=UTC
    )
    other = ion.loads_one("2024-01-01T10:00:00+02:00")
    assert other == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert other.utcoffset() == timedelta(hours=2)


def test_reader_accepts_the_rest_of_ion_text() -> None:
    text = """$ion_1_0
        // a comment
        /* a block
           comment */ {a: 0x1F, b: 0b101, c: 1_000, 'd e': sym, "f": (+ 1 2), g: null.int,
        h: '''long ''' '''string''', i: {{"clob"}}, j: [1, 2,], k: a::b::"x", l: -0.5e1}
        $ion_symbol_table::{symbols:["x"]}
        2
    """
    assert ion.loads(text) == [
        {
            "a": 31,
            "b": 5,
            "c": 1000,
            "d e": "sym",
            "f": ["+", 1, 2],
            "g": None,
            "h": "long string",
            "i": b"clob",
            "j": [1, 2],
            "k": "x",
            "l": -5.0,
        },
        2,
    ]


def test_annotation_modes() -> None:
    text = '{z:ZonedDateTime::"2024-01-01T10:00:00+01:00[Europe/Paris]",b:base64::"QQ=="}'
    java = ion.loads_one(text)
    assert isinstance(java["z"], datetime)
    assert java["b"] == "QQ=="
    assert ion.loads(text, annotations="ignore")[0] == {
        "z": "2024-01-01T10:00:00+01:00[Europe/Paris]",
        "b": "QQ==",
    }
    kept = ion.loads(text, annotations="keep")[0]
    assert kept["b"] == ion.Annotated(("base64",), "QQ==")


def test_writer_skips_null_rows_and_counts() -> None:
    out = io.BytesIO()
    writer = ion.IonWriter(out)
    assert writer.write_all([{"a": 1}, None, [2]]) == 2
    assert out.getvalue() == b"{a:1}\n[2]\n"


class _Endless(io.RawIOBase):
    """A file of ``rows`` ION lines produced on demand, counting the bytes handed out."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.row = 0
        self.pending = b""
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending and self.row < self.rows:
            self.pending = b'{id:%d,name:"row %d",tags:["a","b"]}\n' % (self.row, self.row)
            self.row += 1
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        self.served += size
        return size


def test_reading_streams_a_large_file_one_value_at_a_time() -> None:
    source = _Endless(rows=1_000_000)  # about 40 MB if it were held
    values = ion.iter_values(io.BufferedReader(source))
    assert next(values) == {"id": 0, "name": "row 0", "tags": ["a", "b"]}
    assert source.served < 64 * 1024  # one buffer, not the file
    for index, value in enumerate(values, start=1):
        if index == 20_000:
            assert value["id"] == 20_000
            break
    assert source.served < 2 * 1024 * 1024


MALFORMED = [
    ('{a:1}\n{b:"x}\n', "line 2: unterminated string"),
    ("{a:1}\n{a:1 b:2}\n", "line 2, column 6: expected ',' or '}' in a struct"),
    ("[1,\n2,\n", "line 1: unterminated list (missing ']')"),
    ("{a:1}\n\n  {a:@}\n", "line 3, column 6: unexpected character '@'"),
    ("{a:2024-13-01}", "line 1, column 4: invalid timestamp"),
    ("{a:1.2.3}", "line 1, column 4: invalid number"),
    ('{a:"\\q"}', "line 1, column 5: invalid escape \\q"),
    ("{{not base64!}}", "line 1: invalid base64 in a blob"),
    ('LocalDate::"yesterday"', "line 1, column 12: invalid LocalDate 'yesterday'"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_input_names_the_line_and_column(text: str, message: str) -> None:
    with pytest.raises(ion.IonError) as caught:
        list(ion.iter_values(io.BytesIO(text.encode())))
    assert str(caught.value).startswith(message)


def test_binary_ion_and_bad_encoding_are_refused_clearly() -> None:
    with pytest.raises(ion.IonError, match="binary Ion"):
        list(ion.iter_values(io.BytesIO(ion.BINARY_ION_MARKER + b"\x20")))
    with pytest.raises(ion.IonError, match="line 2: the file is not valid text"):
        list(ion.iter_values(io.BytesIO(b'{a:"x"}\n{a:"\xff"}\n')))


def test_java_double_matches_double_to_string() -> None:
    cases = {1.0: "1.0", 0.1: "0.1", 1e7: "1.0E7", 9999999.0: "9999999.0", 1e-3: "0.001"}
    cases |= {1e-4: "1.0E-4", 123456789.5: "1.234567895E8", -0.0: "-0.0", math.nan: "NaN"}
    for value, text in cases.items():
        assert ion.java_double(value) == text
