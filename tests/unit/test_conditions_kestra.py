"""Kestra's core conditions, as their Java classes define them (triggers.conditions docstring).

Each case follows from the class's ``test()`` (kestra-io/kestra,
``core/src/main/java/io/kestra/plugin/core/condition/*.java``) and ``DateUtils``: what is
parsed how, which bounds are strict, what counts as true, and which failures make a
condition false rather than crash the trigger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from engine.flows import FlowValidationError, load_flow
from schemas.flow.conditions import parse_local_date, parse_offset_time, parse_zoned
from triggers.conditions import all_hold, schedule_holds, simple_holds

C = "io.kestra.plugin.core.condition."
FLOW = {"id": "down", "namespace": "company.team"}


def holds(
    condition: dict[str, Any], trigger_date: str | None = None, execution: Any = None
) -> bool:
    trigger = {"date": trigger_date} if trigger_date else {}
    return simple_holds(condition, execution, {"flow": FLOW, "trigger": trigger})


# ----------------------------------------------------------------------- DateUtils parsers


def test_zoned_date_time_as_java_parses_it() -> None:
    assert parse_zoned("2024-01-01T08:30:00+02:00") == datetime(
        2024, 1, 1, 8, 30, tzinfo=timezone(timedelta(hours=2))
    )
    assert parse_zoned("2024-01-01T08:30Z") == datetime(2024, 1, 1, 8, 30, tzinfo=UTC)
    region = parse_zoned("2024-06-01T10:00:00.123456789+02:00[Europe/Paris]")
    assert (region.hour, region.microsecond) == (10, 123456)  # nanoseconds truncated
    assert region.utcoffset() == timedelta(hours=2)
    for bad in ("2024-01-01T08:30:00", "2024-01-01", "yesterday", "2024-13-01T00:00Z"):
        with pytest.raises(ValueError, match=r"ISO-8601|month"):
            parse_zoned(bad)


def test_offset_time_needs_an_offset() -> None:
    assert parse_offset_time("16:19:12+02:00") == time(
        16, 19, 12, tzinfo=timezone(timedelta(hours=2))
    )
    with pytest.raises(ValueError, match="with an offset"):
        parse_offset_time("16:19:12")


def test_local_date_falls_back_on_the_zoned_dates_own_day() -> None:
    assert parse_local_date("2024-02-29") == date(2024, 2, 29)
    # 23:30 at -05:00 is already the next day in UTC; Kestra keeps the local day.
    assert parse_local_date("2024-03-01T23:30:00-05:00") == date(2024, 3, 1)


# ------------------------------------------------------------------- date conditions


@pytest.mark.parametrize(
    ("day", "weekday", "expected"),
    [("2024-01-01", "MONDAY", True), ("2024-01-01", "TUESDAY", False)],
)
def test_day_week_defaults_to_the_trigger_date(day: str, weekday: str, expected: bool) -> None:
    condition = {"type": C + "DayWeek", "dayOfWeek": weekday}
    assert holds(condition, f"{day}T10:00:00+00:00") is expected
    # the same with an explicit date and no trigger.date at all
    assert holds({**condition, "date": day}) is expected


@pytest.mark.parametrize(
    ("day", "which", "expected"),
    [
        ("2024-01-01", "FIRST", True),  # Mondays of Jan 2024: 1, 8, 15, 22, 29
        ("2024-01-08", "FIRST", False),
        ("2024-01-08", "SECOND", True),
        ("2024-01-15", "THIRD", True),
        ("2024-01-22", "FOURTH", True),
        ("2024-01-22", "LAST", False),  # a fourth that is not the last
        ("2024-01-29", "LAST", True),
        ("2024-01-29", "FOURTH", False),
        ("2024-02-26", "LAST", True),  # Mondays of Feb 2024: 5, 12, 19, 26
        ("2024-02-26", "FOURTH", True),  # ...so its fourth is also its last
        ("2024-01-02", "FIRST", False),  # not a Monday at all
    ],
)
def test_day_week_in_month(day: str, which: str, expected: bool) -> None:
    condition = {
        "type": C + "DayWeekInMonth",
        "date": day,
        "dayOfWeek": "MONDAY",
        "dayInMonth": which,
    }
    assert holds(condition) is expected


def test_weekend() -> None:
    assert holds({"type": C + "Weekend", "date": "2024-01-06"})  # Saturday
    assert holds({"type": C + "Weekend", "date": "2024-01-07T23:00:00+01:00"})  # Sunday, local
    assert not holds({"type": C + "Weekend", "date": "2024-01-08"})


def test_public_holiday_by_country_and_subdivision() -> None:
    bastille = {"type": C + "PublicHoliday", "date": "2024-07-14", "country": "FR"}
    assert holds(bastille)
    assert not holds({**bastille, "date": "2024-07-15"})
    # Lincoln's Birthday is a holiday in New York state only (ISO 3166-2 "US-NY" or "NY").
    lincoln = {"type": C + "PublicHoliday", "date": "2024-02-12", "country": "US"}
    assert not holds(lincoln)
    assert holds({**lincoln, "subDivision": "US-NY"})
    assert holds({**lincoln, "subDivision": "NY"})


def test_public_holiday_without_a_usable_calendar_is_false_not_a_crash() -> None:
    assert not holds({"type": C + "PublicHoliday", "date": "2024-07-14"})
    assert not holds({"type": C + "PublicHoliday", "date": "2024-07-14", "country": "ZZ"})


def test_time_between_compares_instants_of_the_day() -> None:
    between = {
        "type": C + "TimeBetween",
        "after": "08:00:00+00:00",
        "before": "18:00:00+00:00",
    }
    assert holds(between, "2024-01-01T12:00:00+00:00")
    assert not holds(between, "2024-01-01T08:00:00+00:00")  # strictly after
    assert not holds(between, "2024-01-01T18:00:00+00:00")  # strictly before
    # 09:30 at +02:00 is 07:30 UTC: before 08:00 UTC
    assert not holds(between, "2024-01-01T09:30:00+02:00")
    # OffsetTime: no wrap at midnight, 01:00+02:00 is before 00:30Z
    assert holds(
        {"type": C + "TimeBetween", "before": "00:30:00Z"},
        "2024-01-01T01:00:00+02:00",
    )
    assert holds({"type": C + "TimeBetween", "after": "11:00:00Z"}, "2024-01-01T12:00:00Z")


def test_date_time_between_and_a_condition_with_no_bound() -> None:
    window = {
        "type": C + "DateTimeBetween",
        "after": "2024-01-01T00:00:00Z",
        "before": "2024-02-01T00:00:00+01:00",
    }
    assert holds(window, "2024-01-15T10:00:00+00:00")
    assert not holds(window, "2024-01-01T00:00:00+00:00")
    # before is 2024-01-31T23:00Z as an instant: compared as instants, not as local times
    assert holds(window, "2024-01-31T22:30:00+00:00")
    assert not holds(window, "2024-01-31T23:00:00+00:00")  # equal: strictly before
    assert not holds(window, "2024-01-31T23:30:00+00:00")
    # neither bound: Kestra's IllegalConditionEvaluation, so the condition is false
    assert not holds({"type": C + "DateTimeBetween"}, "2024-01-15T10:00:00+00:00")
    assert not holds({"type": C + "TimeBetween"}, "2024-01-15T10:00:00+00:00")


def test_a_date_that_does_not_parse_makes_the_condition_false() -> None:
    assert not holds({"type": C + "Weekend", "date": "{{ 'not a date' }}"})
    assert not holds({"type": C + "Weekend"})  # no trigger.date to render


# ------------------------------------------------------------ expression and execution


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("{{ 1 == 1 }}", True), ("{{ 1 == 2 }}", False), ("0", True), ("  ", False), ("x", True)],
)
def test_expression_is_true_unless_blank_or_false(expression: str, expected: bool) -> None:
    assert holds({"type": C + "Expression", "expression": expression}) is expected


def test_execution_outputs_reads_trigger_outputs() -> None:
    condition = {"type": C + "ExecutionOutputs", "expression": "{{ trigger.outputs.n > 1 }}"}
    assert holds(condition, execution={"outputs": {"n": 2}})
    assert not holds(condition, execution={"outputs": {"n": 0}})
    assert not holds(condition, execution={"outputs": {}})  # no outputs: false
    assert not holds(condition)  # no execution (a webhook): false, logged


def test_has_retry_attempt() -> None:
    retried = {
        "task_runs": [
            {"attempts": [{"state": "FAILED"}, {"state": "SUCCESS"}]},
            {"attempts": [{"state": "SUCCESS"}]},
        ]
    }
    once = {"task_runs": [{"attempts": [{"state": "FAILED"}]}]}
    condition = {"type": C + "HasRetryAttempt", "in": ["FAILED"]}
    assert holds(condition, execution=retried)
    assert not holds(condition, execution=once)  # a single attempt is no retry
    assert not holds({"type": C + "HasRetryAttempt", "in": ["KILLED"]}, execution=retried)
    assert holds({"type": C + "HasRetryAttempt", "notIn": ["KILLED"]}, execution=retried)


def test_deprecated_flow_conditions_test_the_evaluating_flow() -> None:
    other = {"namespace": "elsewhere", "flow_id": "up", "state": "SUCCESS"}
    assert holds(
        {"type": C + "FlowCondition", "namespace": "company.team", "flowId": "down"},
        execution=other,
    )
    assert not holds(
        {"type": C + "FlowCondition", "namespace": "elsewhere", "flowId": "up"}, execution=other
    )
    ns = {"type": C + "FlowNamespaceCondition", "namespace": "company"}
    assert not holds(ns)
    assert holds({**ns, "prefix": True})
    assert holds({**ns, "prefix": "true"})


# ----------------------------------------------------------------------------- Not / Or


def test_not_and_or() -> None:
    monday = {"type": C + "DayWeek", "date": "2024-01-01", "dayOfWeek": "MONDAY"}
    tuesday = {**monday, "dayOfWeek": "TUESDAY"}
    assert holds({"type": C + "Or", "conditions": [tuesday, monday]})
    assert not holds({"type": C + "Or", "conditions": [tuesday]})
    assert holds({"type": C + "Not", "conditions": [tuesday]})
    assert not holds({"type": C + "Not", "conditions": [tuesday, monday]})
    nested = {"type": C + "Not", "conditions": [{"type": C + "Or", "conditions": [tuesday]}]}
    assert holds(nested)


def test_not_of_a_broken_condition_is_false_never_true() -> None:
    broken = {"type": C + "Weekend", "date": "not a date"}
    assert not holds({"type": C + "Not", "conditions": [broken]})
    # Or stops at the first condition that holds, as a Java stream does
    monday = {"type": C + "DayWeek", "date": "2024-01-01", "dayOfWeek": "MONDAY"}
    assert holds({"type": C + "Or", "conditions": [monday, broken]})
    assert not holds({"type": C + "Or", "conditions": [broken, monday]})


def test_all_hold_needs_every_condition() -> None:
    monday = {"type": C + "DayWeek", "date": "2024-01-01", "dayOfWeek": "MONDAY"}
    weekend = {"type": C + "Weekend", "date": "2024-01-01"}
    scope = {"flow": FLOW, "trigger": {}}
    assert all_hold([monday], None, scope)
    assert not all_hold([monday, weekend], None, scope)
    assert all_hold([], None, scope)


# ------------------------------------------------------------------------ Schedule ticks


def _tick(when: str) -> dict[str, Any]:
    return {"date": when, "next": None, "previous": None}


def test_schedule_tests_only_schedule_conditions() -> None:
    trigger = {
        "conditions": [
            {"type": C + "Weekend"},
            # An execution condition on a Schedule is ignored, as Kestra's
            # Schedule.validateScheduleCondition does (a tick has no execution).
            {"type": C + "ExecutionStatus", "in": ["FAILED"]},
        ]
    }
    assert schedule_holds(trigger, FLOW, _tick("2024-01-06T10:00:00+00:00"))
    assert not schedule_holds(trigger, FLOW, _tick("2024-01-08T10:00:00+00:00"))


def test_schedule_conditions_see_the_schedule_variable_and_the_deprecated_list() -> None:
    trigger = {
        "scheduleConditions": [
            {"type": C + "Expression", "expression": "{{ schedule.date == trigger.date }}"},
            {"type": C + "DayWeek", "dayOfWeek": "MONDAY"},
        ]
    }
    assert schedule_holds(trigger, FLOW, _tick("2024-01-01T00:00:00+01:00"))
    assert not schedule_holds(trigger, FLOW, _tick("2024-01-02T00:00:00+01:00"))


# ------------------------------------------------------------------------ flow loading


def _flow(condition: str) -> str:
    return (
        "id: f\nnamespace: company.team\ntasks:\n  - {id: a, type: log, message: x}\n"
        "triggers:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n"
        "    cron: '0 9 * * *'\n    conditions:\n" + condition
    )


def test_conditions_load_with_their_kestra_names_and_legacy_aliases() -> None:
    flow = load_flow(
        _flow(
            "      - type: io.kestra.plugin.core.condition.Not\n"
            "        conditions:\n"
            "          - type: io.kestra.core.models.conditions.types.WeekendCondition\n"
            "      - type: io.kestra.plugin.core.condition.TimeBetweenCondition\n"
            "        after: '08:00:00+01:00'\n"
        )
    )
    dumped = flow.model_dump(by_alias=True, exclude_none=True)
    conditions = dumped["triggers"][0]["conditions"]
    assert conditions[0]["type"] == C + "Not"
    assert conditions[0]["conditions"][0]["type"] == C + "Weekend"
    assert conditions[1]["type"] == C + "TimeBetween"


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (
            "      - type: io.kestra.plugin.core.condition.TimeBetween\n        after: '08:00'\n",
            "time with an offset",
        ),
        (
            "      - type: io.kestra.plugin.core.condition.DateTimeBetween\n"
            "        before: '2024-01-01'\n",
            "date-time with an offset",
        ),
        (
            "      - type: io.kestra.plugin.core.condition.DayWeek\n        dayOfWeek: FUNDAY\n",
            "MONDAY",
        ),
        (
            "      - type: io.kestra.plugin.core.condition.Not\n        conditions: []\n",
            "at least 1",
        ),
    ],
)
def test_a_bad_condition_fails_when_the_flow_loads(condition: str, words: str) -> None:
    with pytest.raises(FlowValidationError) as caught:
        load_flow(_flow(condition))
    messages = " ".join(str(p) for p in caught.value.problems)
    assert words in messages
    assert all(p.line >= 10 for p in caught.value.problems)


def test_an_expression_in_a_date_property_is_checked_only_when_rendered() -> None:
    load_flow(
        _flow(
            "      - type: io.kestra.plugin.core.condition.TimeBetween\n"
            "        after: '{{ vars.opening }}'\n"
        )
    )
