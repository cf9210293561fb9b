"""Finding the plugins: Headwater's own families and third-party packages.

A plugin type is one class: a task (:class:`executors.plugin.TaskPlugin`, a pydantic model
of its properties with a ``type`` literal (Kestra's full name) and an async ``run(ctx)``) or a
polling trigger (:class:`executors.polling.PollingTrigger`, with an async ``poll(ctx)``). Two
places provide them:

- every module of the package :mod:`executors.plugins` (Headwater's families), and
- the entry points of the group ``headwater.plugins`` of any installed distribution::

      [project.entry-points."headwater.plugins"]
      acme = "acme_headwater.tasks"          # a module: its ``PLUGINS`` list
      acme-ping = "acme_headwater.ping:Ping" # or one class, or a list of classes

:func:`load_plugins` imports them once, registers each type's names with
:func:`schemas.types.register_type` (so flows validate, normalize and run with them) and
remembers where each came from for ``headwater plugins list``. A plugin that fails to import
or clashes with a type already known is skipped and reported in :func:`plugin_errors`: one
broken package never stops a worker or hides the other types.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from schemas.types import TypeKind, register_type

if TYPE_CHECKING:
    from executors.plugin import TaskPlugin
    from executors.polling import PollingTrigger

ENTRY_POINT_GROUP: Final = "headwater.plugins"
BUILTIN_PACKAGE: Final = "executors.plugins"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One plugin type and who provides it (``headwater`` or a distribution's name)."""

    cls: type[TaskPlugin] | type[PollingTrigger]
    type: str
    provider: str

    @property
    def kind(self) -> str:
        """``runnable`` (a task) or ``trigger``."""
        from executors.polling import PollingTrigger

        return "trigger" if issubclass(self.cls, PollingTrigger) else "runnable"


_loaded: dict[str, PluginInfo] = {}
_errors: list[str] = []
_state = {"done": False, "loading": False}


def load_plugins() -> None:
    """Discover and register every plugin type, once per process (re-entrant calls no-op)."""
    if _state["done"] or _state["loading"]:
        return
    _state["loading"] = True
    try:
        builtin = importlib.import_module(BUILTIN_PACKAGE)
        for module in pkgutil.iter_modules(builtin.__path__, f"{BUILTIN_PACKAGE}."):
            _load_target(module.name, "headwater", lambda name=module.name: _import(name))
        for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            provider = point.dist.name if point.dist is not None else point.name
            _load_target(point.value, provider, point.load)
    finally:
        _state["loading"] = False
        _state["done"] = True


def plugins() -> list[PluginInfo]:
    """Every registered plugin type, sorted by type name."""
    load_plugins()
    return [_loaded[name] for name in sorted(_loaded)]


def plugin_classes() -> list[type[TaskPlugin]]:
    """The plugins' task types."""
    from executors.plugin import TaskPlugin

    return [info.cls for info in plugins() if issubclass(info.cls, TaskPlugin)]


def trigger_classes() -> list[type[PollingTrigger]]:
    """The plugins' trigger types (polling triggers, run by the trigger runtime)."""
    from executors.polling import PollingTrigger

    return [info.cls for info in plugins() if issubclass(info.cls, PollingTrigger)]


def plugin_errors() -> list[str]:
    """Plugins that could not be loaded, one line each (what, and why)."""
    load_plugins()
    return list(_errors)


def _import(name: str) -> ModuleType:
    return importlib.import_module(name)


def _load_target(target: str, provider: str, load: Any) -> None:
    try:
        loaded = load()
    except Exception as exc:  # a broken third-party package must not break the others
        _errors.append(f"{target} ({provider}): cannot be imported: {exc}")
        return
    if isinstance(loaded, ModuleType):
        loaded = getattr(loaded, "PLUGINS", [])
    classes = loaded if isinstance(loaded, (list, tuple)) else [loaded]
    for cls in classes:
        _register(cls, target, provider)


def _register(cls: Any, target: str, provider: str) -> None:
    from executors.plugin import TaskPlugin
    from executors.polling import PollingTrigger

    if not (isinstance(cls, type) and issubclass(cls, (TaskPlugin, PollingTrigger))):
        _errors.append(
            f"{target} ({provider}): {cls!r} is not a TaskPlugin or PollingTrigger class"
        )
        return
    name = cls.type_name()
    kind: TypeKind = "trigger" if issubclass(cls, PollingTrigger) else "runnable"
    try:
        register_type(name, kind, cls.short_name(), cls.aliases)
    except ValueError as exc:
        _errors.append(f"{target} ({provider}): {exc}")
        return
    _loaded[name] = PluginInfo(cls=cls, type=name, provider=provider)
