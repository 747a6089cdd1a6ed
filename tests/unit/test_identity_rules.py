"""The pure rules of sign-in: registration, web roles, visibility members, back-off."""

from __future__ import annotations

import pytest

from portico_runtime.identity import rules
from portico_runtime.identity.rules import Backoff, Members, WebRole


@pytest.mark.parametrize(
    ("mode", "invitation", "allowed", "reason"),
    [
        ("Open", None, True, ""),
        ("Open", "Valid", True, ""),
        ("Open", "Expired", False, "invitationExpired"),
        ("InvitationOnly", None, False, "invitationRequired"),
        ("InvitationOnly", "Valid", True, ""),
        ("InvitationOnly", "Used", False, "invitationUsed"),
        ("InvitationOnly", "Revoked", False, "invitationRevoked"),
        ("InvitationOnly", "Unknown", False, "invitationUnknown"),
        ("Disabled", "Valid", False, "registrationDisabled"),
        ("Disabled", None, False, "registrationDisabled"),
        ("Sometimes", "Valid", False, "registrationDisabled"),
    ],
)
def test_sign_up(mode: str, invitation: str | None, allowed: bool, reason: str) -> None:
    assert rules.sign_up(mode, invitation) == rules.Decision(allowed, reason)


def test_roles_are_a_union_and_email_rules_need_a_verified_address() -> None:
    staff = WebRole("Staff", Members.parse({"emailDomains": ["@Contoso.com"]}))
    vip = WebRole("VIP", Members.parse({"emails": ["Ada@example.com"]}))
    admins = WebRole("Admins", Members.parse({"claims": [{"claim": "groups", "value": "admins"}]}))
    all_roles = [staff, vip, admins]
    assert rules.roles(all_roles, "jay@contoso.com", True, {}) == {"Authenticated", "Staff"}
    assert rules.roles(all_roles, "jay@contoso.com", False, {}) == {"Authenticated"}
    assert rules.roles(all_roles, "ada@example.com", True, {}, ["Partner"]) == {
        "Authenticated",
        "VIP",
        "Partner",
    }
    assert rules.roles(all_roles, "x@y.z", False, {"groups": ["users", "admins"]}) == {
        "Authenticated",
        "Admins",
    }
    assert rules.roles(all_roles, "x@y.z", False, {"groups": "admins"}) == {
        "Authenticated",
        "Admins",
    }
    # A domain rule is the whole domain, not a suffix of it.
    assert rules.roles(all_roles, "eve@evilcontoso.com", True, {}) == {"Authenticated"}


def test_password_rules() -> None:
    assert rules.password_problem("x" * 11) == "passwordTooShort"
    assert rules.password_problem("x" * 12) == ""
    assert rules.password_problem("x" * 2000) == "passwordTooLong"


def test_backoff_doubles_after_the_free_attempts_and_forgets() -> None:
    b = Backoff(free=3, base=1.0, cap=8.0, forget=100.0)
    waits = []
    for _ in range(7):
        b.failed("k", now=0.0)
        waits.append(b.wait("k", now=0.0))
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert b.wait("k", now=5.0) == 3.0
    assert b.wait("k", now=101.0) == 0.0  # forgotten
    b.failed("j", 0.0)
    b.succeeded("j")
    assert b.wait("j", 0.0) == 0.0
