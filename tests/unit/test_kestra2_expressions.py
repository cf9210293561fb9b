"""Kestra 2.0's expression helpers: the calendar functions and loopOutputs()."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ExpressionError
from engine.expressions import render


def r(template: str, **variables: Any) -> str:
    return render(template, variables)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # the local date counts, never converted to UTC (Kestra's DateUtils.parseLocalDate)
        ("{{ dayOfWeek('2025-01-06T00:30:00+02:00') }}", "MONDAY"),
        ("{{ dayOfWeek('2025-01-05T23:30:00-05:00[America/New_York]') }}", "SUNDAY"),
        ("{{ dayOfWeek('2025-01-07') }}", "TUESDAY"),
        ("{{ hourOfDay('2025-01-06T00:30:00+02:00') }}", "0"),
        ("{{ hourOfDay('2025-01-06T17:05:00') }}", "17"),
        ("{{ dayOfMonth('2025-02-28T10:00:00Z') }}", "28"),
        ("{{ monthOfYear('2025-02-28') }}", "2"),
        ("{{ isWeekend('2025-01-04') }}", "true"),
        ("{{ isWeekend('2025-01-06T12:00:00Z') }}", "false"),
        ("{{ isDayWeekInMonth('2025-01-31', 'friday', 'last') }}", "true"),
        ("{{ isDayWeekInMonth('2025-01-24', 'FRIDAY', 'LAST') }}", "false"),
        ("{{ isDayWeekInMonth('2025-01-13', 'MONDAY', 'SECOND') }}", "true"),
        # 2025-05-31 is a Saturday: the last working day of May is Friday the 30th
        ("{{ isLastWorkingDay('2025-05-30') }}", "true"),
        ("{{ isLastWorkingDay('2025-05-31') }}", "false"),
        ("{{ isLastWorkingDay('2025-05-31', 'MONDAY,SATURDAY') }}", "true"),
        ("{{ isPublicHoliday('2025-12-25', 'FR') }}", "true"),
        ("{{ isPublicHoliday('2025-12-26', 'FR') }}", "false"),
        ("{{ isPublicHoliday('2025-12-26', 'FR', '57') }}", "true"),  # Moselle
        ("{{ isPublicHoliday('2025-12-26', 'FR', 'FR-57') }}", "true"),  # ISO 3166-2
    ],
)
def test_calendar_functions(template: str, expected: str) -> None:
    assert r(template) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ dayOfWeek('yesterday') }}", "could not parse 'date'"),
        ("{{ isDayWeekInMonth('2025-01-13', 'MONDAY', 'FIFTH') }}", "invalid 'position'"),
        ("{{ isDayWeekInMonth('2025-01-13', 'MONDAI', 'FIRST') }}", "invalid 'dayOfWeek'"),
        ("{{ isPublicHoliday('2025-01-01', 'ZZ') }}", "no calendar for 'ZZ'"),
        ("{{ hourOfDay('2025-01-06') }}", "has no time of day"),
        ("{{ loopOutputs('x', 'a') }}", "expects 'outputs' to be a list"),
    ],
)
def test_bad_arguments_fail_the_render_naming_the_function(template: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        r(template)
    assert message in caught.value.message


def test_loop_outputs_reads_one_output_of_every_iteration() -> None:
    outputs = [
        {"item": {"value": "a", "iteration": 0}, "outputs": {"n": 1}},
        {"item": {"value": "b", "iteration": 1}, "outputs": {}},
        {"item": {"value": "c", "iteration": 2}, "outputs": {"n": 3}},
    ]
    assert r("{{ loopOutputs(o, 'n') }}", o=outputs) == "[1,null,3]"
    assert r("{{ loopOutputs(outputs=o, name='n') | length }}", o=outputs) == "3"
