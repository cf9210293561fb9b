"""gcp.auth.OauthAccessToken: a service account's key exchanged at its token_uri (a local OAuth
endpoint that checks the signed grant); the token is the output, masked in the logs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from executors.registry import Registry, add_plugins
from tests.gcp_support import TOKEN, service_account, token_endpoint
from tests.unit.api_receiver import context

TYPE = "io.kestra.plugin.gcp.auth.OauthAccessToken"


async def test_the_token_of_a_service_account_with_its_scopes() -> None:
    with token_endpoint() as (token_uri, key, grants):
        account = service_account(token_uri, key)
        scopes = ["https://www.googleapis.com/auth/devstorage.read_only"]
        task = {"id": "auth", "type": TYPE, "serviceAccount": account, "scopes": scopes}
        ctx = context(task)
        before = datetime.now(UTC)
        outcome = await add_plugins(Registry()).run(task, ctx)
    assert outcome.state == "SUCCESS", outcome.error
    token = outcome.outputs["accessToken"]
    assert token["tokenValue"] == TOKEN
    assert token["scopes"] == scopes
    expires = datetime.fromisoformat(token["expirationTime"].replace("Z", "+00:00"))
    assert before + timedelta(minutes=55) < expires < before + timedelta(minutes=65)
    [grant] = grants
    assert grant["scope"] == scopes[0]
    assert grant["iss"] == json.loads(account)["client_email"]
    ctx.log("INFO", f"token {TOKEN}")
    assert TOKEN not in ctx.logs[-1].message


async def test_a_refused_key_fails_with_the_endpoints_answer() -> None:
    with token_endpoint() as (token_uri, _key, grants):
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        task = {"id": "auth", "type": TYPE, "serviceAccount": service_account(token_uri, other)}
        outcome = await add_plugins(Registry()).run(task, context(task))
    assert outcome.state == "FAILED"
    assert "Google OAuth token request failed" in (outcome.error or "")
    assert "invalid_grant: Invalid JWT Signature." in (outcome.error or "")
    assert grants == []
    task = {"id": "auth", "type": TYPE, "serviceAccount": "{not json"}
    garbage = await add_plugins(Registry()).run(task, context(task))
    assert "property 'serviceAccount': not a JSON key" in (garbage.error or "")
