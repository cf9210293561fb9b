"""Google Cloud credentials for the GCP plugin tests: a local OAuth token endpoint.

A service account's key is exchanged for a token at the key's ``token_uri``: the endpoint here
checks the signed JWT grant with the account's public key, answers with a token, and refuses any
other grant with Google's ``invalid_grant``. Tests name it in the key they give the task.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOKEN = "ya29.local-token"


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@contextlib.contextmanager
def token_endpoint() -> Iterator[tuple[str, rsa.RSAPrivateKey, list[dict[str, Any]]]]:
    """Google's OAuth token endpoint for one service account: it answers a JWT grant signed by
    the account's key with a token, and any other with Google's invalid_grant."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    grants: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            head, body, signature = form["assertion"][0].split(".")
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            try:
                key.public_key().verify(
                    base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
                    f"{head}.{body}".encode(),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
                grants.append({"grant_type": form["grant_type"][0], **claims})
                status, answer = (
                    200,
                    {
                        "access_token": TOKEN,
                        "expires_in": 3600,
                        "token_type": "Bearer",
                    },
                )
            except Exception:
                status, answer = (
                    400,
                    {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", key, grants
    finally:
        server.shutdown()
        server.server_close()


def service_account(token_uri: str, key: rsa.RSAPrivateKey) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "headwater-sa",
            "private_key_id": "k1",
            "private_key": pem(key),
            "client_email": "flows@headwater-sa.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )
