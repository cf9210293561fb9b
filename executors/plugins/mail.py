"""Kestra's email tasks: ``io.kestra.plugin.email.MailSend`` and ``MailExecution`` over SMTP.

Ported from kestra-io/plugin-email (Simple Java Mail 8 on Jakarta Mail); the SMTP dialogue,
its TLS policy and errors are :mod:`executors.smtp`'s.

``MailSend`` properties (Kestra's names and defaults):

- server: ``host``, ``port`` (default by ``transportStrategy``: SMTP 25, SMTPS 465, SMTP_TLS and
  SMTP_OAUTH2 587), ``username``, ``password``, ``transportStrategy`` (SMTPS; SMTP upgrades with
  STARTTLS when offered, SMTP_TLS requires it, SMTP_OAUTH2 is SMTP_TLS with AUTH XOAUTH2 using
  ``accessToken``, else ``password``), ``sessionTimeout`` (10000 ms: connection, each read and
  write), ``verifyServerIdentity`` (true), ``trustedHosts`` (none: every certificate chain is
  accepted, the identity is still checked; a list: only those hosts skip chain verification).
- message: ``from`` and ``to`` (required at run time), ``cc``, ``subject``, ``htmlTextContent``,
  ``plainTextContent`` (default "Please view this email in a modern email client").
  ``to`` and ``cc`` hold one or more addresses separated by ``;`` or ``,`` (``Name <a@b>``
  accepted). The message has ``Return-Receipt-To: <from>`` (Kestra's ``withReturnReceiptTo()``).
- ``attachments`` and ``embeddedImages``: a list of ``{name, uri, contentType}``
  (``application/octet-stream`` by default), or a JSON text of such a list or one such map
  (``{{ inputs.attachments | toJson }}``). ``uri`` is a ``kestra://`` internal storage file; the
  bytes are sent unchanged (base64). An embedded image is an inline part whose Content-ID is
  its ``name``: the HTML refers to it as ``cid:NAME``.

Outputs: none (Kestra's ``VoidOutput``). A server's refusal (authentication, sender, a
recipient, the message) fails the task with the server's answer; the password is masked in every
log line and never put in an error.

``MailExecution``: the same properties plus ``executionId`` (``{{ execution.id }}``),
``customMessage``, ``customFields`` (and ``templateUri``/``textTemplateUri``/
``templateRenderMap``, accepted and unused as in Kestra, which always uses its own templates).
The HTML body is the execution summary (title ``[namespace] flow ➛ STATE`` coloured by state,
custom message, "Succeeded"/"Failed on task `t`" after the duration, a "See details" link when
``kestra.url`` is known, namespace, flow, execution id, status, final task id, custom fields) and
the text body Kestra's fixed "Please view this email in a modern email client";
``htmlTextContent``/``plainTextContent`` are ignored, as in Kestra. The summary's data and its
limits are :func:`executors.plugins.notifications.execution_summary`'s. Our HTML is our own
layout of the same facts, with every value HTML-escaped (Kestra's Pebble template inserts them
raw).

Differences: Kestra's MailSend has no ``bcc``; neither has ours. Jakarta Mail sends without
authenticating when a server offers no AUTH; we do the same and log a warning.
``embeddedImages`` without ``htmlTextContent`` fails (nothing could refer to them), and an
attachment URI that is not ``kestra://`` fails naming the attachment.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from executors.base import SECRET_MASK, TaskContext, TaskError, TaskOutcome, error_message, to_text
from executors.plugin import TaskPlugin, render_bool, render_int, render_map, render_str
from executors.plugins.notifications import EXECUTION_ID, execution_summary
from executors.smtp import (
    DEFAULT_PORTS,
    STRATEGIES,
    Envelope,
    SmtpError,
    SmtpKilled,
    SmtpSettings,
    send,
)
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, Str

DEFAULT_TEXT = "Please view this email in a modern email client"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_SESSION_TIMEOUT_MS = 10_000
# Bodies and headers are 7-bit on the wire: a server without 8BITMIME must accept them.
_POLICY = SMTP.clone(cte_type="7bit")
_OLD = "io.kestra.plugin.notifications.mail"


class Attachment(FlowModel):
    """Kestra's ``MailSend.Attachment``."""

    name: Str
    uri: Str
    contentType: Str = DEFAULT_CONTENT_TYPE


AttachmentList = list[Attachment] | Str | None


def _attachment_items(ctx: TaskContext, value: Any, name: str) -> list[dict[str, Any]]:
    """The ``{name, uri, contentType}`` maps of an attachments property, rendered."""
    if value is None:
        return []
    if isinstance(value, list):
        items: Any = [a.model_dump() if isinstance(a, Attachment) else a for a in value]
    else:
        items = ctx.render(value)
    if isinstance(items, str):
        text = items.strip()
        if not text:
            return []
        try:
            items = orjson.loads(text)
            if isinstance(items, str):  # a JSON string holding the JSON (Kestra accepts it)
                items = orjson.loads(items)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"property '{name}': expected a list of attachments: {exc}") from None
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise TaskError(f"property '{name}' must be a list of {{name, uri, contentType}}")
    out = []
    for index, item in enumerate(items):
        rendered = {k: ctx.render_str(v) for k, v in item.items()}
        for key in ("name", "uri"):
            if not rendered.get(key):
                raise TaskError(f"property '{name}[{index}].{key}' is required")
        rendered.setdefault("contentType", DEFAULT_CONTENT_TYPE)
        rendered["contentType"] = rendered["contentType"] or DEFAULT_CONTENT_TYPE
        out.append(rendered)
    return out


async def _load(ctx: TaskContext, item: Mapping[str, Any], name: str) -> bytes:
    uri = str(item["uri"])
    if not uri.startswith("kestra://"):
        raise TaskError(
            f"property '{name}': attachment '{item['name']}' must be an internal storage URI "
            f"(kestra://...), got {uri!r}"
        )
    if ctx.storage is None:
        raise TaskError("internal storage is not available to this task")
    try:
        return await ctx.storage.read(uri)
    except Exception as exc:
        raise TaskError(
            f"property '{name}': cannot read attachment '{item['name']}': {error_message(exc)}"
        ) from None


def parse_addresses(text: str | None, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of ``a@b; Name <c@d>, e@f``."""
    if not text:
        return []
    pairs = getaddresses([text.replace(";", ",")])
    out = []
    for display, address in pairs:
        if not address and not display:
            continue
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain or any(c.isspace() for c in address):
            raise TaskError(f"property '{name}': invalid email address {address or display!r}")
        out.append((display, address))
    if not out:
        raise TaskError(f"property '{name}': no email address in {text!r}")
    return out


def _header(pairs: list[tuple[str, str]]) -> list[Address]:
    return [Address(display_name=d, addr_spec=a) for d, a in pairs]


def _split_type(content_type: str) -> tuple[str, str]:
    main, _, sub = content_type.split(";")[0].strip().partition("/")
    return (main or "application"), (sub or "octet-stream")


class MailSend(TaskPlugin):
    """Send an email over SMTP (HTML and text bodies, attachments, embedded images)."""

    family: ClassVar[str] = "email"
    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.MailSend",)
    short: ClassVar[str | None] = "mail_send"

    type: Literal["io.kestra.plugin.email.MailSend"]
    host: Str | None = None
    port: IntOrExpr | None = None
    username: Str | None = None
    password: Str | None = None
    transportStrategy: Str = "SMTPS"
    sessionTimeout: IntOrExpr = DEFAULT_SESSION_TIMEOUT_MS
    verifyServerIdentity: BoolOrExpr = True
    trustedHosts: list[Str] | Str | None = None
    from_: Str | None = Field(default=None, alias="from")
    to: Str | None = None
    cc: Str | None = None
    subject: Str | None = None
    htmlTextContent: Str | None = None
    plainTextContent: Str | None = None
    attachments: AttachmentList = None
    embeddedImages: AttachmentList = None
    accessToken: Str | None = None

    def _bodies(self, ctx: TaskContext) -> tuple[str | None, str]:
        html_body = ctx.render_str(self.htmlTextContent)
        text = ctx.render_str(self.plainTextContent)
        return html_body, DEFAULT_TEXT if text is None else text

    def _settings(self, ctx: TaskContext) -> tuple[SmtpSettings, str | None]:
        strategy = (render_str(ctx, self.transportStrategy, "transportStrategy") or "").upper()
        if strategy not in STRATEGIES:
            raise TaskError(
                f"property 'transportStrategy': expected one of {', '.join(STRATEGIES)}, "
                f"got {strategy!r}"
            )
        host = render_str(ctx, self.host, "host", required=True) or ""
        port = render_int(ctx, self.port, "port") or DEFAULT_PORTS[strategy]
        timeout_ms = render_int(ctx, self.sessionTimeout, "sessionTimeout")
        if not timeout_ms or timeout_ms <= 0:
            raise TaskError("property 'sessionTimeout': expected a positive number of ms")
        password = ctx.render_str(self.password)
        token = ctx.render_str(self.accessToken)
        oauth = None
        if strategy == "SMTP_OAUTH2":
            oauth = token if token is not None else password
            if oauth is None:
                raise TaskError(
                    "When using SMTP_OAUTH2, either 'accessToken' or 'password' must be provided"
                )
        trusted = ctx.render(self.trustedHosts)
        if isinstance(trusted, str):
            trusted = [h for h in trusted.replace(",", " ").split() if h]
        settings = SmtpSettings(
            host=host,
            port=port,
            strategy=strategy,  # type: ignore[arg-type]
            timeout=timeout_ms / 1000,
            username=ctx.render_str(self.username),
            password=password if strategy != "SMTP_OAUTH2" else None,
            verify_identity=render_bool(
                ctx, self.verifyServerIdentity, "verifyServerIdentity", True
            ),
            trusted_hosts=tuple(to_text(h) for h in trusted or ()),
        )
        return settings, oauth

    async def _message(self, ctx: TaskContext) -> tuple[EmailMessage, Envelope]:
        sender = parse_addresses(render_str(ctx, self.from_, "from", required=True), "from")
        if len(sender) != 1:
            raise TaskError("property 'from': expected one address")
        to = parse_addresses(render_str(ctx, self.to, "to", required=True), "to")
        cc = parse_addresses(ctx.render_str(self.cc), "cc")
        html_body, text = self._bodies(ctx)
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = _header(sender)
        msg["To"] = _header(to)
        if cc:
            msg["Cc"] = _header(cc)
        subject = ctx.render_str(self.subject)
        if subject is not None:
            msg["Subject"] = subject
        msg["Date"] = format_datetime(ctx.clock())
        msg["Message-ID"] = make_msgid(domain=sender[0][1].rpartition("@")[2])
        msg["Return-Receipt-To"] = str(_header(sender)[0])
        msg.set_content(text)
        if html_body is not None:
            msg.add_alternative(html_body, subtype="html")
            images = _attachment_items(ctx, self.embeddedImages, "embeddedImages")
            html_part = msg.get_body(("html",))
            assert html_part is not None  # just added
            for item in images:
                data = await _load(ctx, item, "embeddedImages")
                main, sub = _split_type(item["contentType"])
                html_part.add_related(
                    data,
                    maintype=main,
                    subtype=sub,
                    cid=f"<{item['name']}>",
                    filename=item["name"],
                    disposition="inline",
                )
        elif self.embeddedImages is not None and _attachment_items(
            ctx, self.embeddedImages, "embeddedImages"
        ):
            raise TaskError("property 'embeddedImages' needs an HTML body (htmlTextContent)")
        for item in _attachment_items(ctx, self.attachments, "attachments"):
            data = await _load(ctx, item, "attachments")
            main, sub = _split_type(item["contentType"])
            msg.add_attachment(data, maintype=main, subtype=sub, filename=item["name"])
        recipients = tuple(a for _, a in to + cc)
        envelope = Envelope(sender=sender[0][1], recipients=recipients, data=msg.as_bytes())
        return msg, envelope

    async def run(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        settings, oauth = self._settings(ctx)
        for secret in (settings.password, oauth):
            if secret:
                ctx.secrets = ctx.secrets | {secret}
        _, envelope = await self._message(ctx)
        ctx.log("DEBUG", f"Sending an email to {', '.join(envelope.recipients)}")
        try:
            await send(settings, envelope, cancelled=ctx.cancelled, log=ctx.log, oauth_token=oauth)
        except SmtpKilled:
            return TaskOutcome(state="KILLED", error="killed")
        except SmtpError as exc:
            message = str(exc)
            for secret in (settings.password, oauth):
                if secret:
                    message = message.replace(secret, SECRET_MASK)
            raise TaskError(f"email: {message}") from None
        ctx.log(
            "INFO",
            f"Email sent to {len(envelope.recipients)} recipient(s) through {settings.where}",
        )
        return {}


_STATE_COLOURS = {"SUCCESS": "green", "WARNING": "orange"}


def execution_html(s: Mapping[str, Any]) -> str:
    """The HTML body of MailExecution: the facts of Kestra's mail template, escaped."""
    e = s["execution"]
    esc = html.escape
    state = to_text(e["state"]["current"])
    colour = _STATE_COLOURS.get(state, "red")
    title = f"[{esc(to_text(e['namespace']))}] {esc(to_text(e['flowId']))}"
    failed = s["firstFailed"]
    if failed is not False:
        outcome = f"Failed on task <code>{esc(to_text(failed['taskId']))}</code>"
    else:
        outcome = "Failed" if s["failed"] else "Succeeded"
    rows = [
        ("Namespace", e["namespace"]),
        ("Flow", e["flowId"]),
        ("Execution", e["id"]),
        ("Status", state),
        ("Final task ID", s["lastTask"]["taskId"]),
        *(s.get("customFields") or {}).items(),
    ]
    parts = [
        "<!doctype html>",
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8">',
        f"<title>Flow {title} execution</title></head>",
        '<body style="font-family: sans-serif; font-size: 14px; background-color: #f6f6f6;">',
        '<div style="max-width: 580px; margin: 0 auto; padding: 20px; background: #ffffff;">',
        f'<p style="font-size: 16px;">{title} ➛ '
        f'<span style="color: {colour};">{esc(state)}</span></p>',
    ]
    if "customMessage" in s:
        parts.append(f"<p>{esc(to_text(s['customMessage']))}</p>")
    parts.append(f"<p>{outcome} after {esc(to_text(s['duration']))}</p>")
    if "link" in s:
        parts.append(
            f'<p><a href="{esc(s["link"])}" target="_blank" style="display: inline-block; '
            "color: #ffffff; background-color: #3498db; border-radius: 5px; padding: 12px 25px; "
            'text-decoration: none; font-weight: bold;">See details</a></p>'
        )
    parts += [f"<p><strong>{esc(to_text(k))} :</strong> {esc(to_text(v))}</p>" for k, v in rows]
    parts += ["</div>", "</body></html>"]
    return "\n".join(parts)


class MailExecution(MailSend):
    """Send an email with the execution's summary (state, duration, link, failed task)."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.MailExecution",)
    short: ClassVar[str | None] = "mail_execution"

    type: Literal["io.kestra.plugin.email.MailExecution"]  # type: ignore[assignment]
    executionId: Str = EXECUTION_ID
    customFields: dict[str, Any] | Str | None = None
    customMessage: Str | None = None
    templateUri: Str | None = None
    textTemplateUri: Str | None = None
    templateRenderMap: dict[str, Any] | Str | None = None

    def _bodies(self, ctx: TaskContext) -> tuple[str | None, str]:
        execution_id = render_str(ctx, self.executionId, "executionId", required=True) or ""
        message = ctx.render_str(self.customMessage)
        fields = render_map(ctx, self.customFields, "customFields")
        summary = execution_summary(ctx, execution_id, message, fields)
        return execution_html(summary), DEFAULT_TEXT


PLUGINS: list[type[TaskPlugin]] = [MailSend, MailExecution]
