"""MailSend and MailExecution against a real SMTP server (aiosmtpd, in-process, on 127.0.0.1):
plain SMTP, STARTTLS and implicit TLS with certificates generated here, AUTH with a good and a
wrong password, trust and identity checks, refused recipients, attachments and embedded images
read from a real internal storage directory, byte for byte."""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.flows import load_flow
from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugins.mail import MailExecution, MailSend, parse_addresses
from executors.smtp import identity_matches
from tests.tls_support import self_signed

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
PASSWORD = "s3cret-Pa55"
LOCATION = TaskLocation("company.team", "etl", "exec1", "send", "tr1")
VARS: dict[str, Any] = {
    "flow": {"id": "etl", "namespace": "company.team"},
    "execution": {"id": "exec1", "startDate": "2025-01-02T03:03:00.500Z", "state": "RUNNING"},
    "kestra": {"url": "https://kestra.example.com/"},
}


# ----------------------------------------------------------------------------- certificates


def _certificate(tmp: Path, name: str, dns: list[str], ips: list[str]) -> ssl.SSLContext:
    cert, key = self_signed(dns[0] if dns else "x", dns, ips)
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ssl.SSLContext]:
    tmp = tmp_path_factory.mktemp("certs")
    return {
        "localhost": _certificate(tmp, "localhost", ["localhost"], ["127.0.0.1"]),
        "other": _certificate(tmp, "other", ["mail.example.test"], []),
    }


# ----------------------------------------------------------------------------- the server


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    tls: bool
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Inbox:
    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.com>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.login if session.auth_data is not None else None
        # session.ssl is only set by STARTTLS; an implicit TLS transport says so itself.
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        self.received.append(
            Received(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, tls, login
            )
        )
        return "250 2.0.0 queued"


class OAuthInbox(Inbox):
    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        given = base64.b64decode(args[1]) if len(args) > 1 else b""
        ok = given == b"user=alice\x01auth=Bearer tok-123\x01\x01"
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(b"alice", b""))


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and data == (b"alice", PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


Server = tuple[Inbox, int]


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Server]]:
    started: list[Controller] = []

    def start(inbox: Inbox | None = None, **kwargs: Any) -> Server:
        inbox = inbox or Inbox()
        port = _free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return inbox, port

    yield start
    for controller in started:
        controller.stop()


# ----------------------------------------------------------------------------- running


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


def _ctx(task: dict[str, Any], storage: LocalStorage | None = None) -> TaskContext:
    return TaskContext.for_job(
        execution_id="exec1",
        task_run_id="tr1",
        attempt=0,
        task=task,
        variables=VARS,
        clock=lambda: NOW,
        storage=storage.for_task(LOCATION) if storage else None,
    )


async def _run(task: dict[str, Any], storage: LocalStorage | None = None) -> TaskContext:
    ctx = _ctx(task, storage)
    cls = MailExecution if task["type"].endswith("MailExecution") else MailSend
    result = await cls.model_validate(task).run(ctx)
    assert result == {}
    return ctx


async def _fails(task: dict[str, Any], storage: LocalStorage | None = None) -> str:
    ctx = _ctx(task, storage)
    with pytest.raises(TaskError) as info:
        await MailSend.model_validate(task).run(ctx)
    message = str(info.value)
    assert PASSWORD not in message
    assert all(PASSWORD not in line.message for line in ctx.logs)
    return message


def _text(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None
    content: str = part.get_content()
    return content.replace("\r\n", "\n")


def _task(port: int, **extra: Any) -> dict[str, Any]:
    task = {
        "id": "send",
        "type": "io.kestra.plugin.email.MailSend",
        "host": "localhost",
        "port": port,
        "from": "Kestra <hello@kestra.io>",
        "to": "ops@example.com",
        "subject": "Flow {{ flow.id }}",
        "htmlTextContent": "<p>Failure of {{ flow.namespace }}.{{ flow.id }}</p>",
    }
    task.update(extra)
    return task


# ----------------------------------------------------------------------------- tests


async def test_plain_smtp_message_headers_recipients_and_attachments_byte_exact(
    smtp_server: Callable[..., Server], storage: LocalStorage
) -> None:
    inbox, port = smtp_server()
    report = bytes(range(256)) * 40 + b"\r\n.\r\nend\x00"
    csv_uri = storage.put_sync(LOCATION, "report.bin", report)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
    png_uri = storage.put_sync(LOCATION, "logo.png", png)
    task = _task(
        port,
        transportStrategy="SMTP",
        to="ops@example.com; Bob Smith <bob@example.com>",
        cc="audit@example.com",
        subject="Été: {{ flow.id }} failed",
        plainTextContent="Plain {{ execution.id }}",
        htmlTextContent='<p>Hi <img src="cid:logo.png"></p>',
        attachments=[
            {"name": "report-{{ execution.id }}.bin", "uri": csv_uri},
            {"name": "copy.csv", "uri": "{{ '" + csv_uri + "' }}", "contentType": "text/csv"},
        ],
        embeddedImages=[{"name": "logo.png", "uri": png_uri, "contentType": "image/png"}],
    )
    ctx = await _run(task, storage)
    [got] = inbox.received
    assert got.sender == "hello@kestra.io"
    assert got.recipients == ["ops@example.com", "bob@example.com", "audit@example.com"]
    assert not got.tls
    assert got.login is None
    msg = got.message
    assert msg["Subject"] == "Été: etl failed"
    assert msg["From"] == "Kestra <hello@kestra.io>"
    assert msg["To"] == "ops@example.com, Bob Smith <bob@example.com>"
    assert msg["Cc"] == "audit@example.com"
    assert msg["Return-Receipt-To"] == "Kestra <hello@kestra.io>"
    assert msg["Date"] == "Thu, 02 Jan 2025 03:04:05 +0000"
    assert msg["Message-ID"].endswith("@kestra.io>")
    assert max(got.data) < 128  # 7-bit on the wire
    assert _text(msg, "plain") == "Plain exec1\n"
    assert _text(msg, "html") == '<p>Hi <img src="cid:logo.png"></p>\n'
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    assert parts["report-exec1.bin"].get_content_type() == "application/octet-stream"
    assert parts["report-exec1.bin"].get_content() == report
    assert parts["report-exec1.bin"].get_content_disposition() == "attachment"
    assert parts["copy.csv"].get_content_type() == "text/csv"
    assert parts["copy.csv"].get_payload(decode=True) == report
    image = parts["logo.png"]
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<logo.png>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == png
    assert "Email sent to 3 recipient(s) through localhost:" in ctx.logs[-1].message


async def test_starttls_with_auth_good_password_and_wrong_password(
    smtp_server: Callable[..., Server], certs: dict[str, ssl.SSLContext]
) -> None:
    inbox, port = smtp_server(
        tls_context=certs["localhost"],
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    auth = {"username": "alice", "password": "{{ 's3cret-' ~ 'Pa55' }}"}
    ctx = await _run(_task(port, transportStrategy="SMTP_TLS", **auth))
    [got] = inbox.received
    assert got.tls
    assert got.login == b"alice"
    assert all(PASSWORD not in line.message for line in ctx.logs)

    message = await _fails(
        _task(
            port, transportStrategy="SMTP_TLS", username="alice", password="wrong-" + PASSWORD[:4]
        )
    )
    assert message == (
        f"email: authentication of 'alice' failed on localhost:{port}: "
        "535 5.7.8 Authentication credentials invalid"
    )
    # A server that requires authentication refuses a sender that did not.
    message = await _fails(_task(port, transportStrategy="SMTP_TLS"))
    assert "530 5.7.0 Authentication required" in message
    assert len(inbox.received) == 1


async def test_oauth2_sends_the_access_token_with_xoauth2_after_starttls(
    smtp_server: Callable[..., Server], certs: dict[str, ssl.SSLContext]
) -> None:
    inbox, port = smtp_server(
        OAuthInbox(), tls_context=certs["localhost"], require_starttls=True, auth_required=True
    )
    oauth = {"transportStrategy": "SMTP_OAUTH2", "username": "alice"}
    await _run(_task(port, accessToken="tok-123", **oauth))
    assert inbox.received[-1].login == b"alice"
    assert inbox.received[-1].tls
    message = await _fails(_task(port, password="tok-999", **oauth))
    assert message == (
        f"email: authentication (XOAUTH2) of 'alice' failed on localhost:{port}: "
        "535 5.7.8 Authentication credentials invalid"
    )


async def test_smtp_upgrades_with_starttls_when_offered_and_smtp_tls_requires_it(
    smtp_server: Callable[..., Server], certs: dict[str, ssl.SSLContext]
) -> None:
    inbox, port = smtp_server(tls_context=certs["localhost"])
    await _run(_task(port, transportStrategy="SMTP"))
    assert inbox.received[-1].tls
    _, plain_port = smtp_server()
    message = await _fails(_task(plain_port, transportStrategy="SMTP_TLS"))
    assert message == (
        f"email: localhost:{plain_port} does not offer STARTTLS, which transportStrategy "
        "SMTP_TLS requires (use SMTP for a server without TLS)"
    )


async def test_implicit_tls_trust_and_server_identity(
    smtp_server: Callable[..., Server], certs: dict[str, ssl.SSLContext]
) -> None:
    inbox, port = smtp_server(ssl_context=certs["localhost"])
    # Default SMTPS: the self-signed chain is trusted, the name matches (DNS and IP SANs).
    await _run(_task(port))
    await _run(_task(port, host="127.0.0.1"))
    assert len(inbox.received) == 2
    assert all(r.tls for r in inbox.received)
    # Not one of trustedHosts: the chain must verify against the system's CAs.
    message = await _fails(_task(port, trustedHosts=["mail.internal"]))
    assert "the server's certificate was rejected (self-signed certificate)" in message
    await _run(_task(port, trustedHosts=["mail.internal", "localhost"]))

    _, other_port = smtp_server(ssl_context=certs["other"])
    message = await _fails(_task(other_port))
    assert message == (
        f"email: TLS with localhost:{other_port}: the server's certificate is not valid for "
        "'localhost' (it names: mail.example.test); set verifyServerIdentity: false to accept it"
    )
    await _run(_task(other_port, verifyServerIdentity=False))
    # Plain SMTP spoken to a TLS port fails, it does not hang.
    message = await _fails(_task(port, transportStrategy="SMTP", sessionTimeout=300))
    assert message == f"email: localhost:{port} did not answer within sessionTimeout (300 ms)"


async def test_refused_recipient_sends_nothing_and_unreachable_server(
    smtp_server: Callable[..., Server],
) -> None:
    inbox, port = smtp_server()
    message = await _fails(
        _task(port, transportStrategy="SMTP", to="ops@example.com, nobody@example.com")
    )
    assert message == (
        f"email: localhost:{port} refused recipients, nothing was sent: nobody@example.com: "
        "550 5.1.1 <nobody@example.com>: Recipient address rejected"
    )
    assert inbox.received == []
    closed = _free_port()
    message = await _fails(_task(closed, transportStrategy="SMTP"))
    assert message.startswith(f"email: cannot connect to localhost:{closed}: ")


async def test_attachments_as_json_text_and_their_errors(
    smtp_server: Callable[..., Server], storage: LocalStorage
) -> None:
    inbox, port = smtp_server()
    uri = storage.put_sync(LOCATION, "a.txt", b"hello")
    listed = '[{"name": "a.txt", "uri": "' + uri + '", "contentType": "text/plain"}]'
    await _run(_task(port, transportStrategy="SMTP", attachments=listed), storage)
    parts = [p for p in inbox.received[-1].message.walk() if p.get_filename() == "a.txt"]
    assert parts[0].get_content() == "hello"
    missing = uri.replace("a.txt", "gone.txt")
    message = await _fails(
        _task(port, transportStrategy="SMTP", attachments=[{"name": "g", "uri": missing}]),
        storage,
    )
    assert message == (
        f"property 'attachments': cannot read attachment 'g': internal storage file {missing} "
        "does not exist"
    )
    message = await _fails(
        _task(port, transportStrategy="SMTP", attachments=[{"name": "p", "uri": "/etc/passwd"}]),
        storage,
    )
    assert "must be an internal storage URI (kestra://...), got '/etc/passwd'" in message
    assert len(inbox.received) == 1


async def test_property_errors_name_the_property(smtp_server: Callable[..., Server]) -> None:
    _, port = smtp_server()
    assert await _fails(_task(port, to=None)) == "property 'to' is required"
    assert await _fails(_task(port, transportStrategy="TLS")) == (
        "property 'transportStrategy': expected one of SMTP, SMTPS, SMTP_TLS, SMTP_OAUTH2, "
        "got 'TLS'"
    )
    assert await _fails(_task(port, to="not-an-address")) == (
        "property 'to': invalid email address 'not-an-address'"
    )
    assert await _fails(_task(port, transportStrategy="SMTP_OAUTH2")) == (
        "When using SMTP_OAUTH2, either 'accessToken' or 'password' must be provided"
    )
    assert parse_addresses("a@b.c;  d@e.f ,", "to") == [("", "a@b.c"), ("", "d@e.f")]


async def test_mail_execution_sends_the_execution_summary(
    smtp_server: Callable[..., Server],
) -> None:
    inbox, port = smtp_server()
    task = _task(
        port,
        type="io.kestra.plugin.email.MailExecution",
        transportStrategy="SMTP",
        customMessage="Nightly <load>",
        customFields={"env": "{{ flow.namespace }}"},
        plainTextContent="ignored",
    )
    await _run(task)
    msg = inbox.received[-1].message
    assert _text(msg, "plain") == "Please view this email in a modern email client\n"
    body = _text(msg, "html")
    assert '[company.team] etl ➛ <span style="color: red;">RUNNING</span>' in body
    assert "<p>Nightly &lt;load&gt;</p>" in body
    assert "<p>Succeeded after 0:01:04.500</p>" in body
    assert 'href="https://kestra.example.com/ui/executions/company.team/etl/exec1"' in body
    for row in (
        "Namespace :</strong> company.team",
        "Execution :</strong> exec1",
        "Final task ID :</strong> send",
        "env :</strong> company.team",
    ):
        assert row in body


def test_identity_matching_rules(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cn.example.org")])

    def der(sans: list[x509.GeneralName]) -> bytes:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(NOW)
            .not_valid_after(NOW + timedelta(days=1))
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    wildcard = der([x509.DNSName("*.example.com")])
    assert identity_matches(wildcard, "smtp.example.com")
    assert not identity_matches(wildcard, "a.smtp.example.com")
    assert not identity_matches(wildcard, "example.com")
    assert not identity_matches(wildcard, "cn.example.org")  # the CN counts only without SANs
    assert identity_matches(der([]), "CN.example.org")
    ip = der([x509.IPAddress(ipaddress.ip_address("10.0.0.1"))])
    assert identity_matches(ip, "10.0.0.1")
    assert not identity_matches(ip, "10.0.0.2")


def test_blueprint_style_flow_validates() -> None:
    flow = load_flow(
        """
id: unreliable_flow
namespace: company.team
tasks:
  - id: fail
    type: io.kestra.plugin.core.log.Log
    message: hi
errors:
  - id: send_email
    type: io.kestra.plugin.email.MailSend
    from: hello@kestra.io
    to: hello@kestra.io
    username: "{{ secret('EMAIL_USERNAME') }}"
    password: "{{ secret('EMAIL_PASSWORD') }}"
    host: mail.privateemail.com
    port: 465
    subject: "Kestra workflow failed for the flow {{flow.id}}"
    htmlTextContent: "Failure alert for flow {{ flow.namespace }}.{{ flow.id }}"
    attachments:
      - name: audit_logs.csv
        uri: "{{ outputs.convert_to_csv.uri }}"
        contentType: text/csv
  - id: old_name
    type: io.kestra.plugin.notifications.mail.MailExecution
    from: a@b.c
    to: d@e.f
    executionId: "{{ trigger.executionId }}"
"""
    )
    assert [t.type for t in flow.errors or []] == [
        "io.kestra.plugin.email.MailSend",
        "io.kestra.plugin.email.MailExecution",
    ]


async def test_cancellation_ends_the_task_killed(smtp_server: Callable[..., Server]) -> None:
    # A server that accepts the connection and never speaks: only cancellation ends the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        task = _task(port, transportStrategy="SMTP", sessionTimeout=60_000)
        ctx = _ctx(task)
        import asyncio

        async def cancel_soon() -> None:
            await asyncio.sleep(0.3)
            ctx.cancelled.set()

        canceller = asyncio.ensure_future(cancel_soon())
        outcome = await MailSend.model_validate(task).run(ctx)
        await canceller
    assert isinstance(outcome, TaskOutcome)
    assert outcome.state == "KILLED"
