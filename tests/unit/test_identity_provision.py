"""`provision` checks sign-in before the portal serves: each identity provider's discovery
document and JWKS (a real provider: tests/support/oidcprovider.py), and the mail server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portico_dev.procs import free_port
from tests.support import oidcprovider
from tests.support.runtime import credentials, portal_json, run, running_instance


def config_with(tmp: Path, url: str, issuer: str, **extra: Any) -> dict[str, Any]:
    config = portal_json("customer-customerselfservice.yaml", url, credentials(tmp))
    secret = tmp / "client-secret"
    secret.write_text("secret")
    config["analytics"] = {}
    config["authentication"]["identityProviders"] = [
        {"name": "corp", "issuer": issuer, "clientId": "web", "clientSecretFile": str(secret)}
    ]
    config.update(extra)
    return config


def test_provision_accepts_a_working_provider(tmp_path: Path) -> None:
    with oidcprovider.provider(tmp_path, [], []) as idp, running_instance() as (url, _):
        code, _, message = run(tmp_path, config_with(tmp_path, url, idp.issuer), "provision")
    assert (code, message) == (0, "")


def test_provision_fails_on_a_provider_with_another_issuer(tmp_path: Path) -> None:
    with oidcprovider.provider(tmp_path, [], []) as idp, running_instance() as (url, _):
        # The same server under another name: its discovery names the issuer it really has.
        other = idp.issuer.replace("localhost", "127.0.0.1")
        code, _, message = run(tmp_path, config_with(tmp_path, url, other), "provision")
    assert code == 1
    assert message.startswith("sign-in is not usable: identity provider corp:")
    assert f"names the issuer '{idp.issuer}'" in message


def test_provision_fails_on_an_unreachable_provider_and_mail_server(tmp_path: Path) -> None:
    dead = free_port()
    with running_instance() as (url, _):
        config = config_with(
            tmp_path, url, f"http://127.0.0.1:{dead}/",
            mail={"host": "127.0.0.1", "port": dead, "from": "portal@example.com"},
        )  # fmt: skip
        code, _, message = run(tmp_path, config, "provision")
    assert code == 1
    discovery = f"http://127.0.0.1:{dead}/.well-known/openid-configuration"
    assert f"the discovery document at {discovery} is unreachable" in message
    assert f"the mail server 127.0.0.1:{dead}: ConnectionRefusedError" in message
    assert "secret" not in message.replace("client-secret", "")


def test_provision_fails_on_a_provider_without_keys(tmp_path: Path) -> None:
    # Not a provider a real one would be: a discovery document whose JWKS is empty.
    import http.server
    import json
    import threading

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = {"keys": []}
            if self.path.endswith("openid-configuration"):
                body = {
                    "issuer": issuer,
                    "authorization_endpoint": issuer + "/a",
                    "token_endpoint": issuer + "/t",
                    "jwks_uri": issuer + "/jwks",
                }  # type: ignore[dict-item]
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with running_instance() as (url, _):
            code, _, message = run(tmp_path, config_with(tmp_path, url, issuer), "provision")
    finally:
        server.shutdown()
    assert code == 1 and f"the JWKS at {issuer}/jwks holds no keys" in message
