"""The names of Headwater's task, trigger and condition types.

Every type has one canonical name (Kestra's current full name, so flows written for Kestra
load unchanged), the legacy Kestra aliases that older flows still use, and a short name of
ours. The core types are listed here; plugins (:mod:`schemas.plugins`) add theirs with
:func:`register_type` the first time a name is looked up. :func:`canonical_type` maps any
name to the canonical one; everything downstream (the compiler, the reducer, the workers) only
ever sees canonical names.
"""

from __future__ import annotations

import difflib
import re
from typing import Final, Literal

TypeKind = Literal["flowable", "runnable", "trigger", "condition"]

_CORE: Final = "io.kestra.plugin.core"
_LEGACY: Final = "io.kestra.core.tasks"

# canonical name -> (kind, short name, legacy aliases)
_TYPES: Final[dict[str, tuple[TypeKind, str, tuple[str, ...]]]] = {
    # Flowable tasks: evaluated inside the executor.
    f"{_CORE}.flow.Sequential": ("flowable", "sequential", (f"{_LEGACY}.flows.Sequential",)),
    f"{_CORE}.flow.Parallel": ("flowable", "parallel", (f"{_LEGACY}.flows.Parallel",)),
    f"{_CORE}.flow.ForEach": ("flowable", "foreach", (f"{_LEGACY}.flows.ForEach",)),
    f"{_CORE}.flow.Loop": ("flowable", "loop", ()),  # Kestra 2.0
    f"{_CORE}.flow.EachSequential": (
        "flowable",
        "each_sequential",
        (f"{_LEGACY}.flows.EachSequential",),
    ),
    f"{_CORE}.flow.EachParallel": (
        "flowable",
        "each_parallel",
        (f"{_LEGACY}.flows.EachParallel",),
    ),
    f"{_CORE}.flow.If": ("flowable", "if", (f"{_LEGACY}.flows.If",)),
    f"{_CORE}.flow.Switch": ("flowable", "switch", (f"{_LEGACY}.flows.Switch",)),
    f"{_CORE}.flow.Dag": ("flowable", "dag", (f"{_LEGACY}.flows.Dag",)),
    f"{_CORE}.flow.Subflow": (
        "flowable",
        "subflow",
        (f"{_LEGACY}.flows.Subflow", f"{_LEGACY}.flows.Flow"),
    ),
    f"{_CORE}.flow.ForEachItem": ("flowable", "foreach_item", (f"{_LEGACY}.flows.ForEachItem",)),
    f"{_CORE}.flow.Pause": ("flowable", "pause", (f"{_LEGACY}.flows.Pause",)),
    f"{_CORE}.flow.WaitFor": ("flowable", "waitfor", (f"{_LEGACY}.flows.WaitFor",)),
    f"{_CORE}.flow.AllowFailure": ("flowable", "allow_failure", (f"{_LEGACY}.flows.AllowFailure",)),
    f"{_CORE}.flow.WorkingDirectory": (
        "flowable",
        "working_directory",
        (f"{_LEGACY}.flows.WorkingDirectory",),
    ),
    # Runnable tasks: become jobs run by workers (or in-process for the trivial ones).
    f"{_CORE}.flow.Sleep": ("runnable", "sleep", (f"{_LEGACY}.flows.Sleep",)),
    f"{_CORE}.log.Log": ("runnable", "log", (f"{_LEGACY}.log.Log",)),
    f"{_CORE}.log.Fetch": ("runnable", "log_fetch", (f"{_LEGACY}.log.Fetch",)),
    f"{_CORE}.debug.Return": ("runnable", "return", (f"{_LEGACY}.debugs.Return",)),
    f"{_CORE}.debug.Echo": ("runnable", "echo", (f"{_LEGACY}.debugs.Echo",)),
    f"{_CORE}.output.OutputValues": (
        "runnable",
        "output_values",
        (f"{_LEGACY}.outputs.OutputValues",),
    ),
    f"{_CORE}.execution.Fail": ("runnable", "fail", (f"{_LEGACY}.executions.Fail",)),
    f"{_CORE}.execution.Labels": ("runnable", "labels", (f"{_LEGACY}.executions.Labels",)),
    f"{_CORE}.execution.Exit": ("runnable", "exit", ()),
    f"{_CORE}.execution.SetVariables": ("runnable", "set_variables", ()),
    f"{_CORE}.execution.UnsetVariables": ("runnable", "unset_variables", ()),
    f"{_CORE}.kv.Set": ("runnable", "kv_set", ()),
    f"{_CORE}.kv.Get": ("runnable", "kv_get", ()),
    f"{_CORE}.kv.Delete": ("runnable", "kv_delete", ()),
    f"{_CORE}.trigger.Toggle": ("runnable", "toggle", (f"{_LEGACY}.trigger.Toggle",)),
    f"{_CORE}.http.Request": ("runnable", "http", ("io.kestra.plugin.fs.http.Request",)),
    "io.kestra.plugin.scripts.shell.Commands": (
        "runnable",
        "shell",
        (f"{_LEGACY}.scripts.Bash",),
    ),
    "io.kestra.plugin.scripts.shell.Script": ("runnable", "shell_script", ()),
    "io.kestra.plugin.scripts.python.Script": ("runnable", "python", ()),
    "io.kestra.plugin.scripts.python.Commands": ("runnable", "python_commands", ()),
    "io.kestra.plugin.kafka.Produce": ("runnable", "kafka_produce", ()),
    "io.kestra.plugin.mqtt.Publish": ("runnable", "mqtt_publish", ()),
    "io.kestra.plugin.amqp.Publish": ("runnable", "amqp_publish", ()),
    # Triggers.
    f"{_CORE}.trigger.Schedule": (
        "trigger",
        "schedule",
        ("io.kestra.core.models.triggers.types.Schedule",),
    ),
    f"{_CORE}.trigger.ScheduleOnDates": ("trigger", "schedule_on_dates", ()),
    f"{_CORE}.trigger.Flow": ("trigger", "flow", ("io.kestra.core.models.triggers.types.Flow",)),
    f"{_CORE}.trigger.Webhook": (
        "trigger",
        "webhook",
        ("io.kestra.core.models.triggers.types.Webhook",),
    ),
    "io.kestra.plugin.kafka.RealtimeTrigger": (
        "trigger",
        "kafka",
        ("io.kestra.plugin.kafka.Trigger",),
    ),
    "io.kestra.plugin.mqtt.RealtimeTrigger": (
        "trigger",
        "mqtt",
        ("io.kestra.plugin.mqtt.Trigger",),
    ),
    "io.kestra.plugin.amqp.RealtimeTrigger": (
        "trigger",
        "rabbitmq",
        ("io.kestra.plugin.amqp.Trigger",),
    ),
    "io.kestra.plugin.redis.list.RealtimeTrigger": (
        "trigger",
        "redis_list",
        ("io.kestra.plugin.redis.RealtimeTrigger",),
    ),
    "io.kestra.plugin.fs.local.Trigger": ("trigger", "file", ()),
    # Conditions (of triggers).
    f"{_CORE}.condition.ExecutionStatus": (
        "condition",
        "execution_status",
        (
            "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
            f"{_CORE}.condition.ExecutionStatusCondition",
        ),
    ),
    f"{_CORE}.condition.ExecutionFlow": (
        "condition",
        "execution_flow",
        (
            "io.kestra.core.models.conditions.types.ExecutionFlowCondition",
            f"{_CORE}.condition.ExecutionFlowCondition",
        ),
    ),
    f"{_CORE}.condition.ExecutionNamespace": (
        "condition",
        "execution_namespace",
        (
            "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition",
            f"{_CORE}.condition.ExecutionNamespaceCondition",
        ),
    ),
    f"{_CORE}.condition.ExecutionLabels": (
        "condition",
        "execution_labels",
        (
            "io.kestra.core.models.conditions.types.ExecutionLabelsCondition",
            f"{_CORE}.condition.ExecutionLabelsCondition",
        ),
    ),
    f"{_CORE}.condition.ExecutionOutputs": (
        "condition",
        "execution_outputs",
        (
            "io.kestra.core.models.conditions.types.ExecutionOutputsCondition",
            f"{_CORE}.condition.ExecutionOutputsCondition",
        ),
    ),
    f"{_CORE}.condition.HasRetryAttempt": (
        "condition",
        "has_retry_attempt",
        (
            "io.kestra.core.models.conditions.types.HasRetryAttemptCondition",
            f"{_CORE}.condition.HasRetryAttemptCondition",
        ),
    ),
    f"{_CORE}.condition.DayWeek": (
        "condition",
        "day_week",
        (
            "io.kestra.core.models.conditions.types.DayWeekCondition",
            f"{_CORE}.condition.DayWeekCondition",
        ),
    ),
    f"{_CORE}.condition.DayWeekInMonth": (
        "condition",
        "day_week_in_month",
        (
            "io.kestra.core.models.conditions.types.DayWeekInMonthCondition",
            f"{_CORE}.condition.DayWeekInMonthCondition",
        ),
    ),
    f"{_CORE}.condition.Weekend": (
        "condition",
        "weekend",
        (
            "io.kestra.core.models.conditions.types.WeekendCondition",
            f"{_CORE}.condition.WeekendCondition",
        ),
    ),
    f"{_CORE}.condition.PublicHoliday": (
        "condition",
        "public_holiday",
        (
            "io.kestra.core.models.conditions.types.PublicHolidayCondition",
            f"{_CORE}.condition.PublicHolidayCondition",
        ),
    ),
    f"{_CORE}.condition.TimeBetween": (
        "condition",
        "time_between",
        (
            "io.kestra.core.models.conditions.types.TimeBetweenCondition",
            f"{_CORE}.condition.TimeBetweenCondition",
        ),
    ),
    f"{_CORE}.condition.DateTimeBetween": (
        "condition",
        "date_time_between",
        (
            "io.kestra.core.models.conditions.types.DateTimeBetweenCondition",
            f"{_CORE}.condition.DateTimeBetweenCondition",
        ),
    ),
    f"{_CORE}.condition.Not": (
        "condition",
        "not",
        (
            "io.kestra.core.models.conditions.types.NotCondition",
            f"{_CORE}.condition.NotCondition",
        ),
    ),
    f"{_CORE}.condition.Or": (
        "condition",
        "or",
        (
            "io.kestra.core.models.conditions.types.OrCondition",
            f"{_CORE}.condition.OrCondition",
        ),
    ),
    f"{_CORE}.condition.Expression": (
        "condition",
        "expression",
        (
            f"{_CORE}.condition.ExpressionCondition",
            "io.kestra.core.models.conditions.types.VariableCondition",
        ),
    ),
    f"{_CORE}.condition.FlowCondition": (
        "condition",
        "flow_condition",
        ("io.kestra.core.models.conditions.types.FlowCondition",),
    ),
    f"{_CORE}.condition.FlowNamespaceCondition": (
        "condition",
        "flow_namespace_condition",
        ("io.kestra.core.models.conditions.types.FlowNamespaceCondition",),
    ),
    f"{_CORE}.condition.MultipleCondition": (
        "condition",
        "multiple",
        ("io.kestra.core.models.conditions.types.MultipleCondition",),
    ),
}

_BY_NAME: Final[dict[str, str]] = {}
for _canonical, (_kind, _short, _aliases) in _TYPES.items():
    for _name in (_canonical, _short, *_aliases):
        _BY_NAME[_name] = _canonical

# The core names above; every other name comes from a plugin (schemas.plugins).
CORE_TYPES: Final[frozenset[str]] = frozenset(_TYPES)


def register_type(canonical: str, kind: TypeKind, short: str, aliases: tuple[str, ...]) -> None:
    """Add a plugin's type; a name already taken by another type is a programming error."""
    if canonical in CORE_TYPES:
        raise ValueError(f"{canonical} is a core type of Headwater")
    for name in (canonical, short, *aliases):
        taken = _BY_NAME.get(name)
        if taken is not None and taken != canonical:
            raise ValueError(f"type name {name!r} of {canonical} is already {taken}")
    _TYPES[canonical] = (kind, short, aliases)
    for name in (canonical, short, *aliases):
        _BY_NAME[name] = canonical


def _plugins() -> None:
    # Imported here: discovering plugins imports their modules, which import schemas.
    from schemas.plugins import load_plugins

    load_plugins()


def canonical_type(name: str) -> str | None:
    """The canonical name for any accepted type name, or None if the name is unknown."""
    found = _BY_NAME.get(name)
    if found is None:
        _plugins()
        found = _BY_NAME.get(name)
    return found


def type_kind(canonical: str) -> TypeKind:
    """Whether a canonical type is a flowable task, a runnable task, a trigger or a condition."""
    if canonical not in _TYPES:
        _plugins()
    return _TYPES[canonical][0]


def short_name(canonical: str) -> str:
    """Headwater's short name of a canonical type."""
    if canonical not in _TYPES:
        _plugins()
    return _TYPES[canonical][1]


def aliases_of(canonical: str) -> tuple[str, ...]:
    """The legacy Kestra names a canonical type also answers to."""
    if canonical not in _TYPES:
        _plugins()
    return _TYPES[canonical][2]


def known_names(kind: TypeKind | None = None) -> list[str]:
    """Every accepted name (canonical, legacy and short), optionally of one kind only."""
    _plugins()
    return sorted(n for n, c in _BY_NAME.items() if kind is None or _TYPES[c][0] == kind)


def canonical_names(kind: TypeKind | None = None) -> list[str]:
    """Every canonical type name, optionally of one kind only."""
    _plugins()
    return sorted(c for c, v in _TYPES.items() if kind is None or v[0] == kind)


# What every "we do not provide this plugin" message says (callers dedupe those per file).
NOT_PROVIDED: Final = "is a Kestra plugin that Headwater does not provide"
_KESTRA_PLUGIN = re.compile(r"^io\.kestra\.(?:plugin|core|storage|ee)\.[A-Za-z0-9_.]+$")
# A class name at most this many edits from one of ours, in the same package, is a typo.
_TYPO_EDITS: Final = 2


def provided_families() -> list[str]:
    """The Kestra plugin packages Headwater provides types of (``core``, ``kafka``, ...)."""
    out: set[str] = set()
    for name in canonical_names():
        package = name.rpartition(".")[0].removeprefix("io.kestra.plugin.")
        out.add("core" if package.startswith("core") else package)
    return sorted(out, key=lambda family: (family != "core", family))


def _what_we_provide_beside(name: str) -> str:
    """The hint after a type we do not provide: its family's packages we do provide, if any."""
    package = name.removeprefix("io.kestra.plugin.")
    if package.startswith("ee."):
        return "it is a Kestra Enterprise Edition plugin; see `headwater plugins list`"
    families = provided_families()
    vendor = package.split(".")[0]
    near = [f for f in families if f.split(".")[0] == vendor]
    if near == [vendor]:
        return f"not one of the {vendor} types Headwater provides; see `headwater plugins list`"
    if near and package != name:
        return f"of {vendor}, Headwater provides {', '.join(near)}; see `headwater plugins list`"
    return f"see `headwater plugins list` for the {len(families)} packages Headwater provides"


def unknown_type_problem(name: str, what: str, candidates: list[str]) -> tuple[str, bool]:
    """The message for a type name no type answers to, and whether it names a Kestra plugin
    Headwater does not provide (as opposed to a misspelling of one it does).

    A Kestra-style name (``io.kestra.plugin....``) is a misspelling only when a candidate in
    the same package has a class name at most two edits away (``log.Lgo`` for ``log.Log``);
    otherwise it is another Kestra plugin (``jdbc.oracle.Queries`` is not a typo of
    ``Query``). Other names get close-match suggestions. ``candidates`` are the accepted names
    of the expected kind; ``what`` is ``task``, ``trigger`` or ``condition``.
    """
    if _KESTRA_PLUGIN.match(name):
        package, _, cls = name.rpartition(".")
        close = [
            c
            for c in candidates
            if c.rpartition(".")[0] == package
            and _edits(c.rpartition(".")[2].lower(), cls.lower()) <= _TYPO_EDITS
        ]
        if not close:
            return f"'{name}' {NOT_PROVIDED} ({_what_we_provide_beside(name)})", True
    else:
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {_or(close[:3])}?" if close else ""
    return f"unknown {what} type '{name}'{hint}", False


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (class names are short)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _or(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
