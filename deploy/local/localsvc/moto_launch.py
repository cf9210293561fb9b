"""Run moto's server with IAM authentication on (executed by moto's own venv, not ours).

    <moto venv>/bin/python moto_launch.py PORT CREDENTIALS_FILE

1. Serves moto on 127.0.0.1:PORT with no authentication, Lambda without Docker (moto's
   "simple" Lambda: an invocation answers without running code; no Docker engine here).
2. Creates the IAM user ``headwater`` with an allow-everything policy and an access key.
3. Turns IAM authentication on for every later request (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``
   = 0): a request signed with another key is refused (``InvalidClientTokenId``,
   ``UnrecognizedClientException``...), a wrong secret with ``SignatureDoesNotMatch``.
4. Writes ``{"accessKeyId", "secretKeyId", "region", "endpoint"}`` to CREDENTIALS_FILE
   (atomically: its presence means the server is ready) and serves until SIGTERM.

One correction to moto 5.2.5: when a request's raw body is empty, its signature check hashes
the request's parsed parameters instead. That is right for a query-protocol form (IAM, SNS:
the form was parsed away), wrong for a bodyless rest-json request, whose "parameters" are its
headers: every correctly signed Lambda ``Invoke`` without a payload, or ``GetFunction``, was
refused. Here only a form falls back to its parameters; any other empty body hashes as empty,
as SigV4 signs it. Nothing else is changed.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import sys
import threading
import urllib.request
from typing import Any

REGION = "us-east-1"
USER = "headwater"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
# moto answers in milliseconds; this only bounds a hung bootstrap request.
REQUEST_TIMEOUT_S = 30.0


def _fix_signature_check() -> None:
    from botocore.awsrequest import AWSRequest
    from moto.iam import access_control

    base = access_control.IAMRequestBase
    if not hasattr(base, "_create_aws_request"):
        raise SystemExit("moto changed: IAMRequestBase._create_aws_request is gone; review the fix")

    def _create_aws_request(self: Any) -> AWSRequest:
        signed = self._get_string_between(
            "SignedHeaders=", ",", self._headers["Authorization"]
        ).split(";")
        headers = self._create_headers_for_aws_request(signed, self._headers)
        # A query-protocol form (IAM, SNS...) reaches here parsed, as the parameters.
        kind = next((v for k, v in self._headers.items() if k.lower() == "content-type"), "")
        form = "application/x-www-form-urlencoded" in str(kind)
        body = self._body or (self._data if form else b"")
        request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
        request.context["timestamp"] = headers["X-Amz-Date"]
        return request

    base._create_aws_request = _create_aws_request


def _post(endpoint: str, path: str, body: bytes, content_type: str) -> None:
    # Always http://127.0.0.1:<port>: this process's own server.
    request = urllib.request.Request(  # noqa: S310
        endpoint + path, data=body, method="POST", headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:  # noqa: S310
        answer.read()


def _bootstrap(endpoint: str) -> dict[str, str]:
    import boto3

    # Any key works while authentication is off; these sign nothing that is checked.
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="bootstrap",  # noqa: S106 - unchecked while auth is off
    )
    iam.create_user(UserName=USER)
    iam.put_user_policy(UserName=USER, PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    _post(endpoint, "/moto-api/config", b'{"lambda": {"use_docker": false}}', "application/json")
    _post(endpoint, "/moto-api/reset-auth", b"0", "text/plain")
    return {
        "accessKeyId": key["AccessKeyId"],
        "secretKeyId": key["SecretAccessKey"],
        "region": REGION,
        "endpoint": endpoint,
    }


def main() -> None:
    port = int(sys.argv[1])
    target = pathlib.Path(sys.argv[2])
    target.unlink(missing_ok=True)
    _fix_signature_check()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    creds = _bootstrap(f"http://127.0.0.1:{port}")
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(creds))
    os.chmod(partial, 0o600)
    partial.replace(target)
    print(f"moto ready on 127.0.0.1:{port}, IAM authentication on", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
