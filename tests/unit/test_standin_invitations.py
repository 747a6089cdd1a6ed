"""The stand-in instance's invitations capability, over real HTTP on loopback.

What the operator (register, read back, undo) and the portal runtime (check, redeem,
roles) call; docs/runtime-contract.md is the contract. Redemption is atomic: two at once
against one redemption left never both win.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.runtime import TOKEN, running_instance

PORTAL = "/portico/v1/portals/support/contoso"
CODE = "a-code-of-the-operators-own-making-0123456789"


def call(url: str, method: str, path: str, body: Any = None, token: str = TOKEN) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def digest(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.encode()).hexdigest()


def register(url: str, id_: str = "inv-1", code: str = CODE, **fields: Any) -> dict[str, Any]:
    body = {
        "codeHash": digest(code),
        "type": "Single",
        "maxRedemptions": 0,
        "expiresAt": "2099-01-01T00:00:00Z",
        "webRoles": ["Customers"],
        "contact": {"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"},
        "revoked": False,
        **fields,
    }
    status, answer = call(url, "PUT", f"{PORTAL}/invitations/{id_}", body)
    assert status in (200, 201), answer
    assert isinstance(answer, dict)
    return answer


def test_a_registered_code_checks_valid_and_the_instance_keeps_only_its_hash() -> None:
    with running_instance() as (url, state):
        register(url)
        assert call(url, "POST", f"{PORTAL}/invitations/check", {"code": CODE}) == (
            200,
            {"state": "Valid", "webRoles": ["Customers"]},
        )
        status, view = call(url, "GET", f"{PORTAL}/invitations/inv-1")
        assert status == 200 and view["codeHash"] == digest(CODE) and view["redemptions"] == []
        assert CODE not in repr(state.stores)


def test_each_refusal_has_its_own_reason_and_status() -> None:
    with running_instance() as (url, _):
        register(url, "used", code="used-code")
        register(url, "expired", code="expired-code", expiresAt="2000-01-01T00:00:00Z")
        register(url, "revoked", code="revoked-code", revoked=True)
        assert (
            call(
                url,
                "POST",
                f"{PORTAL}/invitations/redeem",
                {"code": "used-code", "contactId": "c1"},
            )[0]
            == 200
        )
        cases = {
            "never-issued": (404, "Unknown"),
            "used-code": (409, "Used"),
            "expired-code": (410, "Expired"),
            "revoked-code": (410, "Revoked"),
        }  # fmt: skip
        for code, (status, reason) in cases.items():
            for verb in ("check", "redeem"):
                got = call(
                    url, "POST", f"{PORTAL}/invitations/{verb}", {"code": code, "contactId": "c2"}
                )
                assert got == (status, {"reason": reason}), (code, verb, got)


def test_two_redemptions_at_once_against_one_left_exactly_one_wins() -> None:
    with running_instance() as (url, _):
        for round_ in range(10):  # many races, not one lucky interleaving
            code = f"race-code-{round_}"
            register(url, f"race-{round_}", code=code)
            start, answers = threading.Barrier(2), list[int]()

            def redeem(
                contact: str,
                code: str = code,
                start: threading.Barrier = start,
                answers: list[int] = answers,
            ) -> None:
                start.wait()
                body = {"code": code, "contactId": contact}
                answers.append(call(url, "POST", f"{PORTAL}/invitations/redeem", body)[0])

            threads = [threading.Thread(target=redeem, args=(c,)) for c in ("x", "y")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(answers) == [200, 409], answers
            _, view = call(url, "GET", f"{PORTAL}/invitations/race-{round_}")
            assert len(view["redemptions"]) == 1


def test_a_group_invitation_counts_up_to_its_maximum() -> None:
    with running_instance() as (url, _):
        register(url, "group", code="group-code", type="Group", maxRedemptions=3)
        results = []
        lock, threads = threading.Lock(), []
        for n in range(8):

            def redeem(contact: str = f"c{n}") -> None:
                got = call(
                    url,
                    "POST",
                    f"{PORTAL}/invitations/redeem",
                    {"code": "group-code", "contactId": contact},
                )
                with lock:
                    results.append(got[0])

            threads.append(threading.Thread(target=redeem))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200] * 3 + [409] * 5
        # The same contact redeeming again is the same redemption, not a new one.
        winner = call(url, "GET", f"{PORTAL}/invitations/group")[1]["redemptions"][0]["contact"]
        again = call(
            url, "POST", f"{PORTAL}/invitations/redeem", {"code": "group-code", "contactId": winner}
        )
        assert again[0] == 200
        assert len(call(url, "GET", f"{PORTAL}/invitations/group")[1]["redemptions"]) == 3


def test_roles_come_from_standing_redemptions_and_go_with_an_undo() -> None:
    with running_instance() as (url, _):
        register(url, "a", code="code-a", webRoles=["Customers"])
        register(url, "b", code="code-b", webRoles=["Partners", "Customers"])
        for code in ("code-a", "code-b"):
            call(url, "POST", f"{PORTAL}/invitations/redeem", {"code": code, "contactId": "c1"})
        assert call(url, "GET", f"{PORTAL}/invitations/roles?contact=c1") == (
            200,
            {"webRoles": ["Customers", "Partners"]},
        )
        assert call(url, "DELETE", f"{PORTAL}/invitations/b/redemptions/c1")[0] == 204
        assert call(url, "GET", f"{PORTAL}/invitations/roles?contact=c1")[1] == {
            "webRoles": ["Customers"]
        }
        assert call(url, "DELETE", f"{PORTAL}/invitations/b/redemptions/c1")[0] == 404
        # The undone Single invitation can be redeemed again (by the right person).
        assert (
            call(
                url, "POST", f"{PORTAL}/invitations/redeem", {"code": "code-b", "contactId": "c2"}
            )[0]
            == 200
        )


def test_registering_again_keeps_redemptions_and_revocation_is_final() -> None:
    with running_instance() as (url, _):
        register(url, "inv")
        call(url, "POST", f"{PORTAL}/invitations/redeem", {"code": CODE, "contactId": "c1"})
        register(url, "inv", webRoles=["Other"])
        assert len(call(url, "GET", f"{PORTAL}/invitations/inv")[1]["redemptions"]) == 1
        register(url, "inv", revoked=True)
        assert register(url, "inv", revoked=False)["revoked"] is True


def test_codes_are_per_portal_and_need_credentials() -> None:
    with running_instance() as (url, _):
        register(url)
        other = "/portico/v1/portals/support/other/invitations/check"
        assert call(url, "POST", other, {"code": CODE}) == (404, {"reason": "Unknown"})
        assert (
            call(url, "POST", f"{PORTAL}/invitations/check", {"code": CODE}, token="wrong")[0]
            == 401
        )


@pytest.mark.parametrize(
    "body",
    [
        {"codeHash": "md5:abc"},
        {"codeHash": digest("x"), "type": "Many"},
        {"codeHash": digest("x"), "maxRedemptions": -1},
        {"codeHash": digest("x"), "expiresAt": "next tuesday"},
    ],
)
def test_a_malformed_registration_is_refused(body: dict[str, Any]) -> None:
    with running_instance() as (url, _):
        assert call(url, "PUT", f"{PORTAL}/invitations/bad", body)[0] == 422


def test_expiry_is_judged_at_the_moment_of_asking() -> None:
    with running_instance() as (url, _):
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
        register(url, code="soon", expiresAt=soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
        first = call(url, "POST", f"{PORTAL}/invitations/check", {"code": "soon"})
        assert first[0] in (200, 410)
        time.sleep(max(0.0, (soon - datetime.datetime.now(datetime.UTC)).total_seconds()) + 0.1)
        assert call(url, "POST", f"{PORTAL}/invitations/check", {"code": "soon"}) == (
            410,
            {"reason": "Expired"},
        )
