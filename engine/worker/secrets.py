"""Secrets as Kestra's open-source edition provides them, and what must be masked.

``secret('NAME')`` reads the environment variable ``SECRET_NAME`` of the worker, base64
encoded (kestra.io/docs/concepts/secret), or the configured secret store, scoped by the flow's
namespace (see :mod:`engine.stores.secrets`; the worker uses its :class:`SecretStore`).
Every value a task resolved this way, and the values of the execution's SECRET-type inputs,
are masked in every log line and error message the worker emits for that task run.
:class:`EnvSecrets` is the environment alone, every secret global (tests, simple setups).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from executors.base import SECRET_MASK, TaskError

ENV_PREFIX = "SECRET_"


class SecretLookup(Protocol):
    """What a worker needs of a secret source (EnvSecrets, engine.stores.secrets.SecretStore)."""

    def hook(
        self, reveal: Callable[[str], None], namespace: str | None
    ) -> Callable[[str], Any]: ...


class EnvSecrets:
    """Secrets from ``SECRET_<NAME>`` environment variables (base64 values)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str:
        raw = self._environ.get(ENV_PREFIX + name)
        if raw is None:
            raise TaskError(
                f"Cannot find secret for key '{name}': set the environment variable "
                f"{ENV_PREFIX}{name} (base64 encoded) on the worker"
            )
        try:
            return base64.b64decode(raw.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TaskError(
                f"secret '{name}': {ENV_PREFIX}{name} is not base64-encoded UTF-8 text"
            ) from exc

    def hook(
        self, reveal: Callable[[str], None], namespace: str | None = None
    ) -> Callable[[str], Any]:
        """The ``secret()`` expression hook of one task run; ``reveal`` learns each value.
        Environment secrets are global: ``namespace`` does not narrow them."""

        def secret(name: str) -> str:
            value = self.get(name)
            reveal(value)
            return value

        return secret


def secret_inputs(context: Mapping[str, Any]) -> set[str]:
    """Values of SECRET-type inputs, from the job context's ``secretInputs`` (input ids)."""
    names = context.get("secretInputs") or []
    inputs = context.get("inputs") or {}
    values: set[str] = set()
    if isinstance(names, list) and isinstance(inputs, Mapping):
        for name in names:
            value = inputs.get(name)
            if value not in (None, ""):
                values.add(str(value))
    return values


def mask(text: str | None, secrets: frozenset[str] | set[str]) -> str | None:
    """``text`` with every secret value replaced by the mask (longest first)."""
    if not text:
        return text
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, SECRET_MASK)
    return text
