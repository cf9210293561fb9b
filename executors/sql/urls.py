"""JDBC URLs as Kestra's drivers read them, turned into a driver's connection arguments.

- ``jdbc:postgresql://host[:port][,host2...]/[database][?k=v&...]`` (pgJDBC: port 5432,
  database = the user name when empty; ``user``, ``password``, ``ssl``, ``sslmode``,
  ``currentSchema``, ``ApplicationName``, ``connectTimeout``, ``options`` are read, other
  parameters are ignored). A libpq URL (``postgresql://user:pass@host/db``) is accepted too.
- ``jdbc:mysql://host[:port]/[database][?k=v...]`` and ``jdbc:mariadb://...`` (port 3306;
  ``user``, ``password``, ``useSSL`` / ``sslMode``, ``connectTimeout``, ``allowMultiQueries``).
- ``jdbc:sqlite:`` / ``jdbc:sqlite::memory:`` (in memory), ``jdbc:sqlite:path``.
- ``jdbc:duckdb:`` (a database file in the working directory), ``jdbc:duckdb:path``.

``user:password@`` in a URL is accepted as well. Parse errors name the URL with any password
masked (:func:`redact_url`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from executors.base import SECRET_MASK, TaskError

_PASSWORD_PARAM = re.compile(r"(?i)((?:^|[?&;])password=)[^&;]*")
_USERINFO = re.compile(r"(//[^/@:]*:)[^/@]*@")


def redact_url(url: str) -> str:
    """``url`` with its password (``password=`` parameter, ``user:pass@``) masked."""
    return _USERINFO.sub(
        lambda m: f"{m.group(1)}{SECRET_MASK}@",
        _PASSWORD_PARAM.sub(lambda m: m.group(1) + SECRET_MASK, url),
    )


@dataclass(slots=True)
class ServerUrl:
    """A client/server database's address as parsed from a JDBC URL."""

    host: str
    port: int
    database: str | None
    user: str | None = None
    password: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        """A URL parameter, by case-insensitive name (JDBC drivers read them so)."""
        wanted = name.lower()
        return next((v for k, v in self.params.items() if k.lower() == wanted), None)


def parse_server_url(url: str, schemes: tuple[str, ...], default_port: int) -> ServerUrl:
    """``jdbc:<scheme>://host:port/db?...`` (or ``<scheme>://...``) for one of ``schemes``."""
    text = url.strip()
    bare = text[5:] if text.lower().startswith("jdbc:") else text
    scheme, sep, rest = bare.partition("://")
    if not sep or scheme.lower() not in schemes:
        expected = " or ".join(f"jdbc:{s}://" for s in schemes)
        raise TaskError(
            f"url {redact_url(text)!r} is not a valid URL here: it should start with {expected}"
        )
    netloc, _, tail = rest.partition("/")
    if "?" in netloc:  # jdbc:postgresql://host?user=x (no path)
        netloc, _, query = netloc.partition("?")
        tail = "?" + query
    userinfo, _, hosts = netloc.rpartition("@")
    first = hosts.split(",", 1)[0]  # pgJDBC's fail-over list: the first host is the one used
    try:
        parts = urlsplit(f"//{userinfo + '@' if userinfo else ''}{first}/{tail}")
        host = parts.hostname or "localhost"
        port = parts.port or default_port
    except ValueError as exc:
        raise TaskError(f"url {redact_url(text)!r} is invalid: {exc}") from None
    database = unquote(parts.path.lstrip("/")) or None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    return ServerUrl(
        host=host,
        port=port,
        database=database,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        params=params,
    )


def embedded_path(url: str, scheme: str) -> str:
    """What follows ``jdbc:<scheme>:`` (``jdbc:sqlite:a.db`` -> ``a.db``); may be empty."""
    text = url.strip()
    prefix = f"jdbc:{scheme}:"
    if not text.lower().startswith(prefix):
        raise TaskError(
            f"url {redact_url(text)!r} is not valid here: it should start with {prefix}"
        )
    return text[len(prefix) :]


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")
