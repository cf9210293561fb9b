"""Sending one message over SMTP the way Kestra's mail tasks do (Simple Java Mail on Jakarta Mail).

:func:`send` runs the SMTP dialogue with the standard library's :mod:`smtplib` in a worker
thread. What it reproduces:

- **Transport strategies** (``SmtpSettings.strategy``): ``SMTP`` connects in clear and upgrades
  with STARTTLS when the server offers it (Simple Java Mail's "opportunistic TLS"); ``SMTP_TLS``
  requires STARTTLS; ``SMTPS`` speaks TLS from the first byte; ``SMTP_OAUTH2`` is ``SMTP_TLS``
  with ``AUTH XOAUTH2``. Default ports: 25, 587, 465 and 587.
- **Trust**: with no ``trusted_hosts`` every certificate chain is accepted (Simple Java Mail's
  ``trustingAllHosts(true)`` default, i.e. ``mail.smtp.ssl.trust=*``); with a list, only those
  hosts are accepted without verification and any other host's chain must verify against the
  system's CAs. ``verify_identity`` (Kestra's ``verifyServerIdentity``, default true) then checks
  the certificate's names against the host (DNS and IP subjectAltNames, the common name when it
  has none, a ``*.`` wildcard in the left-most label), also when the chain was not verified.
- **Authentication**: a password makes the client authenticate when the server offers AUTH
  (Jakarta Mail sends without authenticating when it does not; we log a warning).
- **Recipients**: every RCPT must be accepted or nothing is sent (Jakarta Mail's default
  ``sendpartial=false``): a refused recipient resets the transaction and fails with the
  server's answers.
- **Timeouts**: ``timeout`` (Kestra's ``sessionTimeout``) bounds the connection and each read
  and write. Cancellation closes the socket, which ends the thread's blocking call.

Errors are :class:`SmtpError` with the server's code and text; the password never appears in
them (smtplib's answers carry the server's reply only).
"""

from __future__ import annotations

import asyncio
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

Strategy = Literal["SMTP", "SMTPS", "SMTP_TLS", "SMTP_OAUTH2"]
STRATEGIES: tuple[str, ...] = ("SMTP", "SMTPS", "SMTP_TLS", "SMTP_OAUTH2")
DEFAULT_PORTS: dict[str, int] = {"SMTP": 25, "SMTPS": 465, "SMTP_TLS": 587, "SMTP_OAUTH2": 587}


class SmtpError(Exception):
    """The message could not be sent; the text names the step and holds the server's answer."""


class SmtpKilled(Exception):
    """The task was cancelled while the SMTP dialogue ran (the socket was closed)."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    strategy: Strategy
    timeout: float
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_identity: bool = True
    trusted_hosts: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]
    data: bytes


def tls_context(settings: SmtpSettings) -> tuple[ssl.SSLContext, bool]:
    """The TLS context of a connection, and whether the identity must be checked by hand."""
    trust_all = not settings.trusted_hosts or settings.host in settings.trusted_hosts
    if trust_all:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context, settings.verify_identity
    context = ssl.create_default_context()
    context.check_hostname = settings.verify_identity
    return context, False


def certificate_names(der: bytes) -> tuple[list[str], list[str], list[str]]:
    """(DNS names, IP addresses, common names) of a DER certificate."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        dns, ips = [], []
    else:
        dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return dns, ips, cns


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        # A wildcard stands for exactly one left-most label.
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def identity_matches(der: bytes, host: str) -> bool:
    """Whether the certificate names ``host`` (RFC 6125; the CN only when no DNS SAN exists)."""
    dns, ips, cns = certificate_names(der)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(ipaddress.ip_address(ip) == address for ip in ips) or (
            not dns and not ips and str(address) in cns
        )
    names = dns or cns
    return any(_dns_match(name, host) for name in names)


def _check_identity(client: smtplib.SMTP, settings: SmtpSettings) -> None:
    sock = client.sock
    der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    if not der:
        raise SmtpError(f"TLS with {settings.where}: the server sent no certificate")
    if not identity_matches(der, settings.host):
        dns, ips, cns = certificate_names(der)
        names = ", ".join(dns + ips) or ", ".join(cns) or "none"
        raise SmtpError(
            f"TLS with {settings.where}: the server's certificate is not valid for "
            f"'{settings.host}' (it names: {names}); set verifyServerIdentity: false to accept it"
        )


def _answer(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {message}".strip()


_Client = TypeVar("_Client", bound=smtplib.SMTP)


class _Session:
    """One SMTP dialogue; ``close`` may be called from another thread to abort it."""

    def __init__(self, settings: SmtpSettings, log: Callable[[str, str], None]) -> None:
        self.settings = settings
        self.log = log
        self.client: smtplib.SMTP | None = None
        # The socket as soon as it exists: the greeting is read inside smtplib's constructor.
        self.sock: socket.socket | None = None
        self.aborted = False

    def _watched(self, cls: type[_Client]) -> type[_Client]:
        session = self

        class Watched(cls):  # type: ignore[valid-type,misc]  # a subclass of the given class
            def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
                sock: socket.socket = super()._get_socket(host, port, timeout)
                session.sock = sock
                return sock

        return Watched

    def close(self) -> None:
        self.aborted = True
        client = self.client
        for sock in (client.sock if client is not None else None, self.sock):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def run(self, envelope: Envelope, oauth_token: str | None) -> None:
        s = self.settings
        context, check_identity = tls_context(s)
        client: smtplib.SMTP
        # The constructor connects and reads the greeting; the watched socket lets a
        # cancellation interrupt that read.
        if s.strategy == "SMTPS":
            ssl_client = self._watched(smtplib.SMTP_SSL)
            client = ssl_client(s.host, s.port, timeout=s.timeout, context=context)
        else:
            client = self._watched(smtplib.SMTP)(s.host, s.port, timeout=s.timeout)
        self.client = client
        try:
            if self.aborted:
                raise SmtpKilled
            if s.strategy == "SMTPS" and check_identity:
                _check_identity(client, s)
            client.ehlo_or_helo_if_needed()
            if s.strategy in ("SMTP_TLS", "SMTP_OAUTH2") or (
                s.strategy == "SMTP" and client.has_extn("starttls")
            ):
                if not client.has_extn("starttls"):
                    raise SmtpError(
                        f"{s.where} does not offer STARTTLS, which transportStrategy "
                        f"{s.strategy} requires (use SMTP for a server without TLS)"
                    )
                client.starttls(context=context)
                if check_identity:
                    _check_identity(client, s)
                client.ehlo()
            self._authenticate(client, oauth_token)
            self._transaction(client, envelope)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _authenticate(self, client: smtplib.SMTP, oauth_token: str | None) -> None:
        s = self.settings
        if s.strategy == "SMTP_OAUTH2":
            if oauth_token is None:
                return
            user = s.username or ""
            response = f"user={user}\x01auth=Bearer {oauth_token}\x01\x01"
            try:
                client.auth("XOAUTH2", lambda challenge=None: response, initial_response_ok=True)
            except smtplib.SMTPAuthenticationError as exc:
                raise SmtpError(
                    f"authentication (XOAUTH2) of '{user}' failed on {s.where}: "
                    f"{_answer(exc.smtp_code, exc.smtp_error)}"
                ) from None
            return
        if s.password is None:
            return
        if not client.has_extn("auth"):
            self.log("WARN", f"{s.where} offers no AUTH: the email is sent unauthenticated")
            return
        try:
            client.login(s.username or "", s.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpError(
                f"authentication of '{s.username or ''}' failed on {s.where}: "
                f"{_answer(exc.smtp_code, exc.smtp_error)}"
            ) from None
        except smtplib.SMTPException as exc:
            raise SmtpError(f"authentication on {s.where} failed: {exc}") from None

    def _transaction(self, client: smtplib.SMTP, envelope: Envelope) -> None:
        where = self.settings.where
        code, text = client.mail(envelope.sender)
        if code != 250:
            client.rset()
            raise SmtpError(f"{where} refused the sender {envelope.sender}: {_answer(code, text)}")
        refused: list[str] = []
        for recipient in envelope.recipients:
            code, text = client.rcpt(recipient)
            if code not in (250, 251):
                refused.append(f"{recipient}: {_answer(code, text)}")
        if refused:
            client.rset()
            raise SmtpError(f"{where} refused recipients, nothing was sent: {'; '.join(refused)}")
        code, text = client.data(envelope.data)
        if code != 250:
            raise SmtpError(f"{where} refused the message: {_answer(code, text)}")


async def send(
    settings: SmtpSettings,
    envelope: Envelope,
    *,
    cancelled: asyncio.Event,
    log: Callable[[str, str], None],
    oauth_token: str | None = None,
) -> None:
    """Deliver ``envelope``; raises SmtpError (the server's answer) or SmtpKilled."""
    session = _Session(settings, log)
    work = asyncio.ensure_future(asyncio.to_thread(_guarded, session, envelope, oauth_token))
    stop = asyncio.ensure_future(cancelled.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            session.close()
            await asyncio.wait({work})
            work.exception()  # retrieved: the abort's own error says nothing new
            raise SmtpKilled
        work.result()
    finally:
        stop.cancel()


def _guarded(session: _Session, envelope: Envelope, oauth_token: str | None) -> None:
    s = session.settings
    try:
        session.run(envelope, oauth_token)
    except SmtpError:
        raise
    except smtplib.SMTPServerDisconnected as exc:
        if session.aborted:
            raise SmtpKilled from None
        if isinstance(exc.__context__, TimeoutError):
            raise SmtpError(_timeout(s)) from None
        raise SmtpError(f"{s.where} closed the connection: {exc}") from None
    except smtplib.SMTPResponseException as exc:
        raise SmtpError(f"{s.where} answered {_answer(exc.smtp_code, exc.smtp_error)}") from None
    except smtplib.SMTPException as exc:
        raise SmtpError(f"SMTP with {s.where} failed: {exc}") from None
    except ssl.SSLCertVerificationError as exc:
        raise SmtpError(
            f"TLS with {s.where}: the server's certificate was rejected ({exc.verify_message}); "
            "add the host to trustedHosts or set verifyServerIdentity: false"
        ) from None
    except ssl.SSLError as exc:
        raise SmtpError(f"TLS with {s.where} failed: {exc.reason or exc}") from None
    except TimeoutError:
        raise SmtpError(_timeout(s)) from None
    except OSError as exc:
        if session.aborted:
            raise SmtpKilled from None
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise SmtpError(f"cannot connect to {s.where}: {reason}") from None


def _timeout(s: SmtpSettings) -> str:
    return f"{s.where} did not answer within sessionTimeout ({round(s.timeout * 1000)} ms)"
