"""The stand-in's token exchange: a portal token works for its own portal only.

Each test performs the attack (a portal's token used elsewhere, after expiry, after
revocation, to mint more tokens) and expects the stand-in to refuse it.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from portico_standin.app import create_app
from portico_standin.auth import Tokens
from portico_standin.state import InstanceState, store

INSTANCE = {"Authorization": "Bearer instance-secret"}


def instance() -> tuple[TestClient, InstanceState]:
    state = InstanceState(
        authorization=INSTANCE["Authorization"], languages=("en-US",), solutions=()
    )
    return TestClient(create_app(state)), state


def mint(client: TestClient, namespace: str, portal: str, ttl: int = 3600) -> dict[str, str]:
    answer = client.post(
        "/portico/v1/tokens",
        json={"namespace": namespace, "portal": portal, "ttlSeconds": ttl},
        headers=INSTANCE,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, str] = answer.json()
    return body


def bearer(token: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['token']}"}


def test_a_portal_token_works_for_its_own_portal() -> None:
    client, _ = instance()
    token = mint(client, "team-a", "shop")
    assert {"id", "token", "expiresAt"} <= token.keys()
    assert client.get("/portico/v1/portals/team-a/shop", headers=bearer(token)).status_code == 200
    solutions = client.post(
        "/portico/v1/portals/team-a/shop/solutions",
        json={"solutions": ["PortalBase"]},
        headers=bearer(token),
    )
    assert solutions.status_code == 200
    # The one instance-wide read a runtime needs: what is installed.
    assert client.get("/portico/v1/instance", headers=bearer(token)).status_code == 200


def test_a_token_of_portal_a_is_refused_for_portal_b() -> None:
    client, state = instance()
    token = mint(client, "team-a", "shop")
    for path in ("/portico/v1/portals/team-b/shop", "/portico/v1/portals/team-a/other"):
        assert client.get(path, headers=bearer(token)).status_code == 401
    answer = client.post(
        "/portico/v1/portals/team-b/shop/solutions",
        json={"solutions": ["PortalBase"]},
        headers=bearer(token),
    )
    assert answer.status_code == 401
    assert "team-b/shop" not in state.installed


def test_a_portal_token_cannot_mint_or_revoke_tokens() -> None:
    client, _ = instance()
    token = mint(client, "team-a", "shop")
    other = mint(client, "team-b", "shop")
    asked = client.post(
        "/portico/v1/tokens",
        json={"namespace": "team-b", "portal": "shop", "ttlSeconds": 3600},
        headers=bearer(token),
    )
    assert asked.status_code == 401
    assert (
        client.delete(f"/portico/v1/tokens/{other['id']}", headers=bearer(token)).status_code == 401
    )
    assert client.get("/portico/v1/portals/team-b/shop", headers=bearer(other)).status_code == 200


def test_an_expired_token_is_refused() -> None:
    client, state = instance()
    now = [1_000_000.0]
    store(state, Tokens).clock = lambda: now[0]
    token = mint(client, "team-a", "shop", ttl=60)
    assert client.get("/portico/v1/portals/team-a/shop", headers=bearer(token)).status_code == 200
    now[0] += 60
    assert client.get("/portico/v1/portals/team-a/shop", headers=bearer(token)).status_code == 401


def test_a_revoked_token_is_refused_and_revoking_again_is_harmless() -> None:
    client, _ = instance()
    token = mint(client, "team-a", "shop")
    assert client.delete(f"/portico/v1/tokens/{token['id']}", headers=INSTANCE).status_code == 204
    assert client.get("/portico/v1/portals/team-a/shop", headers=bearer(token)).status_code == 401
    assert client.delete(f"/portico/v1/tokens/{token['id']}", headers=INSTANCE).status_code == 204


def test_nothing_without_credentials_and_bad_requests_say_why() -> None:
    client, _ = instance()
    assert client.post("/portico/v1/tokens", json={}).status_code == 401
    assert (
        client.get("/portico/v1/portals/a/b", headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    bad = client.post(
        "/portico/v1/tokens",
        json={"namespace": "a", "portal": "b", "ttlSeconds": 10**9},
        headers=INSTANCE,
    )
    assert bad.status_code == 422 and "ttlSeconds" in bad.json()["message"]
    missing = client.post("/portico/v1/tokens", json={"portal": "b"}, headers=INSTANCE)
    assert missing.status_code == 422 and "namespace" in missing.json()["message"]
