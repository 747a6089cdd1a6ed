"""An identity provider behind a private CA: the runtime trusts it through the instance
credentials' `ca.crt` (the one trust decision of portico_runtime.trust, which also
covers the instance and the interaction sinks), and refuses it without, saying why.
The provider is the real one (tests/support/oidcprovider.py) over HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import certifi
import pytest

from portico_dev.procs import free_port
from portico_runtime import trust
from portico_runtime.client import InstanceError
from portico_runtime.identity import checks, settings
from portico_runtime.instance_api import InstanceAPI
from tests.support import oidcprovider
from tests.support.identity import certificate
from tests.support.oidc import ALICE, oidc_portal, provider_sign_in, start
from tests.support.oidcprovider import CLIENT_SECRET
from tests.support.runtime_stub import answer, serving


def private_ca(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA: no public root signed it."""
    where = tmp / "idp-tls"
    where.mkdir()
    return certificate(where)


def test_a_provider_behind_a_private_ca_is_refused_without_ca_crt_and_trusted_with_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = private_ca(tmp_path)
    browser_trust = ssl.create_default_context(cafile=str(cert))
    with oidc_portal(tmp_path, provider_tls=(cert, key)) as (p, idp), p.browser() as visitor:
        assert idp.issuer.startswith("https://127.0.0.1:")
        credentials = Path(p.config["instance"]["credentialsDir"])
        assert not (credentials / "ca.crt").exists()
        with caplog.at_level(logging.WARNING, logger="portico.identity"):
            refused = visitor.get("/auth/zitadel/signin")
        assert refused.status_code == 503, refused.text
        assert "zitadel" in refused.text.lower() and "try again" in refused.text.lower()
        reason = caplog.text
        assert (
            "sign-in with zitadel could not start: the server's certificate is not trusted"
            in reason
        )
        assert "put that CA in the instance credentials' ca.crt" in reason
        for text in (reason, refused.text):
            assert CLIENT_SECRET not in text.replace("client-secret", "")

        # The company's CA in the instance credentials: discovery, the token, the JWKS
        # (the ID token's signature) and UserInfo are all fetched over the provider's TLS.
        (credentials / "ca.crt").write_bytes(cert.read_bytes())
        back = provider_sign_in(start(visitor), ALICE, verify=browser_trust)
        done = visitor.get(back)
        assert done.status_code == 303 and done.headers["location"] == "/profile", done.text
        assert "alice@contoso.com" in visitor.get("/profile").text


def test_provision_checks_the_provider_with_the_same_trust(tmp_path: Path) -> None:
    cert, key = private_ca(tmp_path)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    port = free_port()
    issuer = f"https://127.0.0.1:{port}/"
    with oidcprovider.provider(tmp_path, [], [], port=port, issuer=issuer, tls=(cert, key)) as idp:
        provider = settings.Provider(
            name="corp", issuer=idp.issuer, client_id="web", client_secret_file="unused"
        )
        with pytest.raises(checks.CheckFailed) as refused:
            checks.provider(provider, str(credentials))
        message = str(refused.value)
        assert message.startswith("identity provider corp: the discovery document at https://")
        assert "cannot be read: the server's certificate is not trusted" in message
        assert "put that CA in the instance credentials' ca.crt" in message
        (credentials / "ca.crt").write_bytes(cert.read_bytes())
        checks.provider(provider, str(credentials))  # discovery and JWKS, trusted now


def test_the_private_ca_is_trusted_beside_the_public_roots(tmp_path: Path) -> None:
    cert, _ = private_ca(tmp_path)
    public = len(ssl.create_default_context(cafile=certifi.where()).get_ca_certs())
    assert len(trust.context(tmp_path).get_ca_certs()) == public  # no ca.crt: public only
    (tmp_path / "ca.crt").write_bytes(cert.read_bytes())
    with_ca = trust.context(tmp_path)
    assert len(with_ca.get_ca_certs()) == public + 1  # a public provider still works
    assert trust.context(tmp_path) is with_ca  # one context while ca.crt is unchanged
    assert trust.context("") is not with_ca


def test_the_instance_api_follows_a_rotated_ca_crt_without_a_restart(tmp_path: Path) -> None:
    """The instance's private CA changes (ca.crt rewritten in place, as the kubelet does
    for a Secret): the next call uses it, and until then the reason names the fix."""
    old_ca, _ = private_ca(tmp_path)
    (tmp_path / "now").mkdir()
    cert, key = certificate(tmp_path / "now")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text("t0ken")
    (credentials / "ca.crt").write_bytes(old_ca.read_bytes())
    with https_json(cert, key) as url:
        portal = cast(Any, SimpleNamespace(instance_url=url, credentials_dir=str(credentials)))

        async def calls() -> None:
            api = InstanceAPI()
            with pytest.raises(InstanceError) as refused:
                await api.get(portal, "/hello")
            assert "the server's certificate is not trusted" in str(refused.value)
            assert "put that CA in the instance credentials' ca.crt" in str(refused.value)
            (credentials / "ca.crt").write_bytes(cert.read_bytes())
            assert await api.get(portal, "/hello") == {"authorization": "Bearer t0ken"}
            await api.close()

        asyncio.run(calls())


@contextlib.contextmanager
def https_json(cert: Path, key: Path) -> Iterator[str]:
    """A loopback HTTPS server answering every GET with the Authorization it received."""

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"authorization": self.headers["Authorization"]}).encode()
            answer(self, body, "application/json")

        def log_message(self, *_: Any) -> None:
            pass

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with serving(Echo, tls) as port:
        yield f"https://127.0.0.1:{port}"
