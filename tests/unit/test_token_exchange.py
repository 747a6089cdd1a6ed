"""The operator's token exchange against the real stand-in instance on loopback.

What a tenant's portal Secret gets is a token the instance minted for that portal:
it works on the portal's own paths, is refused for another portal's, and is dead
once revoked. Never a key of the instance's own credentials.
"""

from __future__ import annotations

import base64
import datetime
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from portico.api.model import PortalInstance
from portico.controller import instance_api, token_exchange
from portico.controller.act import Writer
from portico.core import names, token
from portico.core.observed import Observed, SecretView
from tests.support.certs import make_leaf
from tests.support.runtime import TOKEN, running_instance
from tests.support.worlds import world


def instance_at(url: str, insecure: bool = True) -> PortalInstance:
    return PortalInstance(
        "crm", url, ("portico-system", "crm-creds"), ("en-US",), (), ("jay@contoso.com",),
        allowed_from="All", insecure=insecure,
    )  # fmt: skip


CREDS = SecretView(
    "crm-creds", "1", frozenset({"token"}), {"token": base64.b64encode(TOKEN.encode()).decode()}
)


def get(url: str, bearer: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def secret_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-instance", "namespace": "team", "annotations": {}},
        "data": {},
    }


def test_the_portal_gets_a_token_for_itself_alone_and_revocation_ends_it() -> None:
    with running_instance() as (url, _):
        base = world()
        o = Observed(**{**base.__dict__, "instance": instance_at(url), "credentials": CREDS})
        writer = Writer(kube=None)  # type: ignore[arg-type]
        secret = writer.with_token(secret_manifest(), o, 3600)
        value = base64.b64decode(secret["data"]["token"]).decode()
        assert value != TOKEN  # never the instance's own credentials
        annotations = secret["metadata"]["annotations"]
        assert annotations[token.TOKEN_ID] and annotations[names.APPLIED_HASH]
        ns, name = o.portal.namespace, o.portal.name
        assert get(f"{url}/portico/v1/portals/{ns}/{name}", value) == 200
        assert get(f"{url}/portico/v1/portals/{ns}/other", value) == 401
        assert get(f"{url}/portico/v1/portals/elsewhere/{name}", value) == 401
        writer.revoke(o, annotations[token.TOKEN_ID])
        assert get(f"{url}/portico/v1/portals/{ns}/{name}", value) == 401


def test_a_refused_or_unreachable_exchange_says_why_without_secrets() -> None:
    with running_instance() as (url, _):
        wrong = SecretView(
            "crm-creds", "1", frozenset({"token"}), {"token": base64.b64encode(b"nope").decode()}
        )
        with pytest.raises(
            token_exchange.TokenExchangeFailed, match="refused the credentials"
        ) as err:
            token_exchange.mint(instance_at(url), wrong, "team", "web", 3600)
        assert "nope" not in str(err.value)
        assert err.value.permanent  # a person must fix the Secret: the portal is Failed
    with pytest.raises(token_exchange.TokenExchangeFailed, match="unreachable") as gone:
        token_exchange.mint(instance_at(url), CREDS, "team", "web", 3600)
    assert not gone.value.permanent  # retried with backoff


def test_the_instance_credentials_never_go_over_plain_http_unless_insecure() -> None:
    with running_instance() as (url, state):
        with pytest.raises(token_exchange.TokenExchangeFailed, match=r"spec\.insecure") as err:
            token_exchange.mint(instance_at(url, insecure=False), CREDS, "team", "web", 3600)
        assert err.value.permanent
        assert "Tokens" not in state.stores  # nothing was minted


def test_over_https_the_instance_is_checked_against_its_ca(tmp_path: Path) -> None:
    key, leaf, ca = make_leaf("localhost")
    cert, pem = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(leaf.public_bytes(Encoding.PEM))
    pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with_ca = SecretView(
        "crm-creds",
        "2",
        frozenset({"token", "ca.crt"}),
        {**CREDS.data, "ca.crt": base64.b64encode(ca.public_bytes(Encoding.PEM)).decode()},
    )
    with running_instance(tls=(cert, pem)) as (url, state):
        inst = instance_at(url, insecure=False)
        minted = [token_exchange.mint(inst, with_ca, "team", f"web{i}", 60) for i in range(2)]
        assert minted[0].id != minted[1].id
        # Without the instance's CA its certificate is not trusted: nothing is sent.
        with pytest.raises(token_exchange.TokenExchangeFailed, match="CERTIFICATE_VERIFY"):
            token_exchange.mint(inst, CREDS, "team", "web", 60)
        assert sorted(state.stores["Tokens"].by_id) == sorted(m.id for m in minted)
    # One context per CA, built once: each build parses the system's CA bundle.
    assert instance_api.tls_context(with_ca) is instance_api.tls_context(with_ca)
    assert instance_api.tls_context(with_ca) is not instance_api.tls_context(CREDS)


def test_expiry_is_read_as_given() -> None:
    with running_instance() as (url, _):
        minted = token_exchange.mint(instance_at(url), CREDS, "team", "web", 600)
    left = minted.expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(seconds=590) < left <= datetime.timedelta(seconds=601)
    assert json.dumps(repr(minted)).count(minted.token) == 0  # the token is not in its repr
