"""An identity provider behind a private CA: the runtime trusts it through the instance
credentials' `ca.crt` (the one trust decision of portico_runtime.trust, which also
covers the instance and the interaction sinks), and refuses it without, saying why.
The provider is the real one (tests/support/oidcprovider.py) over HTTPS."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import certifi
import pytest

from portico_dev.procs import free_port
from portico_runtime import trust
from portico_runtime.identity import checks, settings
from tests.support import oidcprovider
from tests.support.identity import certificate
from tests.support.oidc import ALICE, oidc_portal, provider_sign_in, start
from tests.support.oidcprovider import CLIENT_SECRET


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
