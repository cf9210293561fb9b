"""The secret store: ``secret('NAME')`` scoped by namespace, and the masker of known values.

Two backends implement one small interface (:class:`SecretBackend`):

- :class:`EnvBackend` — Kestra OSS style ``SECRET_<NAME>`` environment variables, base64
  encoded. They are **global** (every namespace sees them), as in Kestra OSS, unless a prefix
  convention is configured: ``env_scopes`` maps a name prefix to a namespace, so with
  ``{"PAY_": "company.pay"}`` the variable ``SECRET_PAY_DB_PASSWORD`` is the secret
  ``DB_PASSWORD`` of ``company.pay`` only. ``env_global=False`` ignores every unscoped variable
  (strict multi-tenant mode).
- :class:`FileBackend` — a directory with one YAML/JSON file per namespace
  (``company.pay.yml``: ``{DB_PASSWORD: "..."}``), or one YAML/JSON file mapping namespace to
  ``{name: value}``. Values are plain text (protect the files with permissions); the file is
  re-read when it changes.

Scoping: a secret of namespace ``a.b`` is visible to flows of ``a.b`` and of its children
(``a.b.c``), never to ``a.bc`` or ``x.y``. Lookup walks from the flow's namespace up to the
root (nearest wins), file store before environment at each level, then the global secrets.

Masking: :class:`SecretMasker` replaces every known secret value (all namespaces: masking too
much is safe, too little is not) in strings nested anywhere in outputs, inputs and log lines.
The projector and the API build one from the same settings as the workers.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml

from engine.errors import ConfigError
from engine.settings import SecretsSettings, Settings
from executors.base import SECRET_MASK, TaskError

ENV_PREFIX = "SECRET_"
# The file store is stat'ed at most this often to notice edits: cheap, and an operator who
# adds a secret sees it used within a second.
FILE_RECHECK_S = 1.0
# The masker asks its store for the known values at most this often: decoding every
# variable per row would cost more than the masking itself.
MASK_REFRESH_S = 5.0
_SUFFIXES = (".yml", ".yaml", ".json")


class SecretBackend(Protocol):
    """Where secrets come from. ``namespace=None`` asks for the global secrets."""

    def lookup(self, namespace: str | None, name: str) -> str | None:
        """The value of ``name`` defined exactly at ``namespace``, or None."""
        ...

    def values(self) -> Iterable[str]:
        """Every secret value this backend knows (for masking)."""
        ...


def namespace_chain(namespace: str | None) -> list[str]:
    """``a.b.c`` -> ``[a.b.c, a.b, a]``: the namespaces whose secrets a flow may read."""
    if not namespace:
        return []
    parts = namespace.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _decode(variable: str, raw: str) -> str:
    try:
        return base64.b64decode(raw.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TaskError(f"{variable} is not base64-encoded UTF-8 text") from exc


class EnvBackend:
    """``SECRET_<NAME>`` variables (base64), global or scoped by a configured name prefix."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        scopes: Mapping[str, str] | None = None,
        global_secrets: bool = True,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        # Longest prefix first, so "PAY_EU_" wins over "PAY_".
        self._scopes = sorted((scopes or {}).items(), key=lambda kv: len(kv[0]), reverse=True)
        self._global = global_secrets

    def _scope_of(self, rest: str) -> tuple[str | None, str]:
        for prefix, namespace in self._scopes:
            if rest.startswith(prefix) and len(rest) > len(prefix):
                return namespace, rest[len(prefix) :]
        return None, rest

    def _entries(self) -> Iterator[tuple[str | None, str, str]]:
        for variable in list(self._environ):
            if variable.startswith(ENV_PREFIX):
                namespace, name = self._scope_of(variable[len(ENV_PREFIX) :])
                if namespace is not None or self._global:
                    yield namespace, name, variable

    def lookup(self, namespace: str | None, name: str) -> str | None:
        for ns, key, variable in self._entries():
            if ns == namespace and key == name:
                return _decode(variable, self._environ[variable])
        return None

    def values(self) -> Iterable[str]:
        out = []
        for _, _, variable in self._entries():
            try:
                out.append(_decode(variable, self._environ[variable]))
            except TaskError:
                continue  # a malformed variable is reported when a task asks for it
        return out


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"secret file {path} is not valid {path.suffix[1:]}: {exc}") from exc


def _strings(path: Path, where: str, data: Any) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
        for k, v in data.items()
    ):
        raise ConfigError(f"secret file {path}: {where} must map secret names to string values")
    return {k: str(v) for k, v in data.items()}


class FileBackend:
    """A directory of ``<namespace>.yml|yaml|json`` files, or one file ``{namespace: {...}}``."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        self._checked = float("-inf")
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._secrets: dict[str, dict[str, str]] = {}
        self.reload()

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        if self.path.is_file():
            return [self.path]
        raise ConfigError(
            f"the secret store {self.path} does not exist; create it or unset "
            "HEADWATER_SECRETS__PATH"
        )

    def _signature_now(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        for p in self._files():
            st = p.stat()
            out.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def reload(self) -> None:
        """Read the store again when a file was added, removed or changed."""
        signature = self._signature_now()
        self._checked = self._clock()
        if signature == self._signature:
            return
        secrets: dict[str, dict[str, str]] = {}
        if self.path.is_dir():
            for p in self._files():
                secrets.setdefault(p.stem, {}).update(_strings(p, "the file", _parse(p)))
        else:
            data = _parse(self.path) or {}
            if not isinstance(data, Mapping):
                raise ConfigError(f"secret file {self.path} must map namespaces to secrets")
            for ns, entries in data.items():
                secrets[str(ns)] = _strings(self.path, f"namespace {ns!r}", entries)
        self._secrets, self._signature = secrets, signature

    def _fresh(self) -> dict[str, dict[str, str]]:
        if self._clock() - self._checked >= FILE_RECHECK_S:
            self.reload()
        return self._secrets

    def lookup(self, namespace: str | None, name: str) -> str | None:
        if namespace is None:
            return None  # the file store has no global secrets: every one has an owner
        return self._fresh().get(namespace, {}).get(name)

    def values(self) -> Iterable[str]:
        return [v for entries in self._fresh().values() for v in entries.values()]


class SecretStore:
    """Namespace-scoped ``secret()`` over the configured backends (file store first)."""

    def __init__(self, backends: Iterable[SecretBackend]) -> None:
        self.backends = list(backends)

    @classmethod
    def from_settings(
        cls, settings: SecretsSettings, environ: Mapping[str, str] | None = None
    ) -> SecretStore:
        """The store the settings describe (``path``, ``env_global``, ``env_scopes``)."""
        backends: list[SecretBackend] = []
        if settings.path:
            backends.append(FileBackend(settings.path))
        backends.append(
            EnvBackend(environ, scopes=settings.env_scopes, global_secrets=settings.env_global)
        )
        return cls(backends)

    def get(self, namespace: str | None, name: str) -> str:
        """The secret ``name`` as a flow of ``namespace`` sees it; TaskError when missing."""
        for scope in [*namespace_chain(namespace), None]:
            for backend in self.backends:
                value = backend.lookup(scope, name)
                if value is not None:
                    return value
        raise TaskError(
            f"Cannot find secret for key '{name}' in namespace '{namespace or ''}' or its "
            f"parents: set {ENV_PREFIX}{name} (base64) on the worker, or add it to the "
            "secret store file of the namespace"
        )

    def hook(self, reveal: Callable[[str], None], namespace: str | None) -> Callable[[str], Any]:
        """The ``secret()`` expression hook of one task run; ``reveal`` learns each value."""

        def secret(name: str) -> str:
            value = self.get(namespace, name)
            reveal(value)
            return value

        return secret

    def values(self) -> set[str]:
        return {v for backend in self.backends for v in backend.values() if v}

    def masker(self) -> SecretMasker:
        return SecretMasker(self.values)


class SecretMasker:
    """Masks every known secret value in text and in JSON-like values, recursively.

    ``values`` is a fixed collection, or a callable asked again at most every
    :data:`MASK_REFRESH_S` (a store whose secrets change while the process runs)."""

    def __init__(
        self,
        values: Iterable[str] | Callable[[], Iterable[str]] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if callable(values):
            self._source: Callable[[], Iterable[str]] = values
        else:
            fixed = frozenset(values)
            self._source = lambda: fixed
        self._clock = clock
        self._asked = float("-inf")
        self._known: frozenset[str] | None = None
        self._pattern: re.Pattern[str] | None = None

    def _compiled(self) -> re.Pattern[str] | None:
        now = self._clock()
        if self._known is not None and now - self._asked < MASK_REFRESH_S:
            return self._pattern
        self._asked = now
        known = frozenset(v for v in self._source() if v)
        if known != self._known:
            self._known = known
            # Longest first: a secret that contains another is masked whole.
            ordered = sorted(known, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        return self._pattern

    @property
    def active(self) -> bool:
        return self._compiled() is not None

    def text(self, value: str | None) -> str | None:
        pattern = self._compiled()
        if not value or pattern is None:
            return value
        return pattern.sub(SECRET_MASK, value)

    def json(self, value: Any) -> Any:
        """A copy of ``value`` with secrets masked in every string (keys too); a number
        whose text equals a secret is masked as well."""
        pattern = self._compiled()
        if pattern is None or value is None:
            return value
        return _walk(value, pattern)


def _walk(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(SECRET_MASK, value)
    if isinstance(value, dict):
        return {_walk(k, pattern): _walk(v, pattern) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, pattern) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return SECRET_MASK if pattern.fullmatch(str(value)) else value
    return value


def secret_masker(settings: Settings) -> SecretMasker:
    """The masker of every secret the settings' store knows (projector, API)."""
    return SecretStore.from_settings(settings.secrets).masker()
