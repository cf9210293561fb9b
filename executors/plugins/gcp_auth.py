"""Kestra's ``io.kestra.plugin.gcp.auth.OauthAccessToken``: an OAuth access token of the task's
Google credentials, for a later task (a Docker registry login, a REST call).

What Kestra does: the credentials (``serviceAccount``, else Application Default Credentials;
``impersonatedServiceAccount``), scoped by ``scopes`` (default
``https://www.googleapis.com/auth/cloud-platform``), are refreshed and the output is
``accessToken``: ``tokenValue``, ``scopes``, ``expirationTime``. Kestra encrypts
``tokenValue`` in the outputs when an encryption key is configured, and otherwise outputs it as
is; Headwater has no output encryption, so the token is an output value (the service account
key never is). The token is masked in the task's own logs.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin
from executors.plugins.gcp_gcs import GcpConnection
from executors.remote import common as c
from executors.remote.gcs import refreshed_credentials, render_settings


class OauthAccessToken(TaskPlugin, GcpConnection):
    """Fetch an OAuth access token for the task's Google credentials."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.auth.OauthAccessToken"]

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        settings = render_settings(ctx, self)
        creds = await refreshed_credentials(ctx, settings, anonymous=False)
        if creds is None or not creds.token:
            raise TaskError("Google credentials gave no access token")
        expiry = getattr(creds, "expiry", None)
        token = c.drop_none(
            {
                "scopes": list(settings.scopes),
                "tokenValue": creds.token,
                "expirationTime": c.iso(expiry),
            }
        )
        return {"accessToken": token}


PLUGINS: list[type[TaskPlugin]] = [OauthAccessToken]
