"""The stand-in instance's contacts: e-mail lookup, identities by (issuer, subject),
argon2id passwords, single-use expiring reset tokens, portal-scoped access."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.testclient import TestClient

from portico_standin import contacts
from portico_standin.app import create_app
from portico_standin.state import InstanceState, store

AUTH = {"Authorization": "Bearer instance-token"}
P = "/portico/v1/portals/shop/support"


@pytest.fixture
def state() -> InstanceState:
    return InstanceState(authorization=AUTH["Authorization"], languages=("en-US",), solutions=())


@pytest.fixture
def client(state: InstanceState) -> TestClient:
    return TestClient(create_app(state), headers=AUTH)


def new(client: TestClient, email: str = "ada@example.com") -> dict[str, str]:
    r = client.post(f"{P}/contacts", json={"email": email, "firstName": "Ada"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_create_find_read_update(client: TestClient) -> None:
    ada = new(client)
    assert (
        client.get(f"{P}/contacts", params={"email": "ADA@example.com"}).json()["id"] == ada["id"]
    )
    assert client.get(f"{P}/contacts", params={"email": "bob@example.com"}).status_code == 404
    again = client.post(f"{P}/contacts", json={"email": "Ada@Example.com"})
    assert again.status_code == 409 and again.json()["reason"] == "Exists"
    r = client.patch(f"{P}/contacts/{ada['id']}", json={"lastName": "Lovelace", "email": "x@y"})
    assert r.json()["lastName"] == "Lovelace" and r.json()["email"] == "ada@example.com"
    assert client.patch(f"{P}/contacts/{ada['id']}", json={"phone": 5}).status_code == 422
    # Another portal's path sees none of this portal's contacts.
    other = "/portico/v1/portals/shop/other"
    assert client.get(f"{other}/contacts/{ada['id']}").status_code == 404


def test_every_endpoint_needs_the_credentials(state: InstanceState) -> None:
    anonymous = TestClient(create_app(state))
    assert anonymous.get(f"{P}/contacts", params={"email": "a@b"}).status_code == 401
    assert anonymous.post(f"{P}/credentials/check", json={}).status_code == 401
    assert anonymous.post(f"{P}/password-resets", json={"email": "a@b"}).status_code == 401


def test_identities_are_keyed_by_issuer_and_subject(client: TestClient) -> None:
    ada, bob = new(client), new(client, "bob@example.com")
    link = {"issuer": "https://idp.example", "subject": "42"}
    assert client.post(f"{P}/contacts/{ada['id']}/identities", json=link).status_code == 200
    found = client.get(f"{P}/identities", params=link).json()
    assert found["id"] == ada["id"]
    # The same subject at another issuer is someone else.
    elsewhere = {"issuer": "https://other.example", "subject": "42"}
    assert client.get(f"{P}/identities", params=elsewhere).status_code == 404
    taken = client.post(f"{P}/contacts/{bob['id']}/identities", json=link)
    assert taken.status_code == 409 and taken.json()["reason"] == "Taken"


def test_passwords_are_argon2id_hashes(client: TestClient, state: InstanceState) -> None:
    ada = new(client)
    password = "correct horse battery"
    assert (
        client.put(f"{P}/contacts/{ada['id']}/password", json={"password": password}).status_code
        == 204
    )
    kept = store(state, contacts.ContactStore).portals["shop/support"].by_id[ada["id"]]
    assert kept.password_hash.startswith("$argon2id$") and password not in kept.password_hash
    ok = client.post(
        f"{P}/credentials/check", json={"email": "ada@example.com", "password": password}
    )
    assert ok.status_code == 200 and ok.json()["contact"]["id"] == ada["id"]
    for email, pw in [("ada@example.com", "wrong password!"), ("nobody@example.com", password)]:
        r = client.post(f"{P}/credentials/check", json={"email": email, "password": pw})
        assert r.status_code == 200 and r.json() == {"valid": False, "reason": "Invalid"}


def test_reset_tokens_are_single_use_and_expire(
    client: TestClient, state: InstanceState, monkeypatch: pytest.MonkeyPatch
) -> None:
    new(client)
    assert client.post(f"{P}/password-resets", json={"email": "eve@example.com"}).status_code == 404
    token = client.post(f"{P}/password-resets", json={"email": "ada@example.com"}).json()["token"]
    kept = store(state, contacts.ContactStore).portals["shop/support"].resets
    assert token not in kept and len(token) >= 40
    redeem = {"token": token, "password": "a new long password"}
    assert client.post(f"{P}/password-resets/redeem", json=redeem).status_code == 200
    used = client.post(f"{P}/password-resets/redeem", json=redeem)
    assert used.status_code == 409 and used.json()["reason"] == "Used"
    check = {"email": "ada@example.com", "password": "a new long password"}
    assert client.post(f"{P}/credentials/check", json=check).json()["valid"] is True
    late = client.post(f"{P}/password-resets", json={"email": "ada@example.com"}).json()["token"]
    monkeypatch.setattr(time, "time", lambda: 1e12)
    expired = client.post(f"{P}/password-resets/redeem", json={**redeem, "token": late})
    assert expired.status_code == 410 and expired.json()["reason"] == "Expired"
    unknown = client.post(f"{P}/password-resets/redeem", json={**redeem, "token": "nope"})
    assert unknown.status_code == 404


def test_concurrent_creates_of_one_email_make_one_contact(client: TestClient) -> None:
    answers: list[int] = []

    def create() -> None:
        answers.append(client.post(f"{P}/contacts", json={"email": "race@example.com"}).status_code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201] + [409] * 7


def test_delete_removes_the_contact_its_identities_and_resets(client: TestClient) -> None:
    ada = new(client)
    link = {"issuer": "https://idp.example", "subject": "7"}
    client.post(f"{P}/contacts/{ada['id']}/identities", json=link)
    client.post(f"{P}/password-resets", json={"email": "ada@example.com"})
    assert client.delete(f"{P}/contacts/{ada['id']}").status_code == 204
    assert client.get(f"{P}/contacts", params={"email": "ada@example.com"}).status_code == 404
    assert client.get(f"{P}/identities", params=link).status_code == 404
    assert client.delete(f"{P}/contacts/{ada['id']}").status_code == 404
    assert new(client)["id"] != ada["id"]  # the address is free again
