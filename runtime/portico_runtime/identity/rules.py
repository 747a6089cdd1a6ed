"""The pure rules of sign-in: who may sign up, which web roles a person has, who may see
a private site, and how long a failed password makes the next attempt wait.

No I/O here: every function takes what it decides on and returns the decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portico_runtime.visitor import AUTHENTICATED

OPEN, INVITATION_ONLY, DISABLED = "Open", "InvitationOnly", "Disabled"
# What an invitation check can say (the instance's answer, docs/runtime-contract.md).
VALID = "Valid"
INVITATION_PROBLEMS = ("Unknown", "Used", "Expired", "Revoked")


@dataclass(frozen=True)
class Members:
    """Who a web role (or a private site's allow list) names."""

    emails: frozenset[str] = frozenset()
    email_domains: frozenset[str] = frozenset()
    claims: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def parse(raw: Any) -> Members:
        raw = raw if isinstance(raw, dict) else {}
        claims = tuple(
            (str(c.get("claim", "")), str(c.get("value", "")))
            for c in raw.get("claims") or []
            if isinstance(c, dict) and c.get("claim")
        )
        return Members(
            emails=frozenset(str(e).strip().lower() for e in raw.get("emails") or []),
            email_domains=frozenset(
                str(d).strip().lower().lstrip("@") for d in raw.get("emailDomains") or []
            ),
            claims=claims,
        )

    def include(self, email: str, email_verified: bool, claims: Mapping[str, Any]) -> bool:
        """Whether the person is named: by e-mail or domain only when the e-mail is verified
        (anyone can type an address), or by one of their provider's claims."""
        email = email.strip().lower()
        domain = email.rpartition("@")[2]
        if email_verified and email and (email in self.emails or domain in self.email_domains):
            return True
        return any(_claim_has(claims.get(name), value) for name, value in self.claims)


def _claim_has(found: Any, value: str) -> bool:
    """A claim matches when it equals the value or, for a list claim (groups), contains it."""
    if isinstance(found, list):
        return value in [str(v) for v in found]
    return found is not None and str(found) == value


@dataclass(frozen=True)
class WebRole:
    name: str
    members: Members = field(default_factory=Members)


def roles(
    web_roles: Iterable[WebRole],
    email: str,
    email_verified: bool,
    claims: Mapping[str, Any],
    granted: Iterable[str] = (),
) -> frozenset[str]:
    """A signed-in person's roles: Authenticated, the web roles that name them, and the
    roles their invitations granted (a union: no rule takes a role away)."""
    named = {r.name for r in web_roles if r.members.include(email, email_verified, claims)}
    return frozenset({AUTHENTICATED, *named, *granted})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # a message key when not allowed


def sign_up(registration: str, invitation_state: str | None) -> Decision:
    """May someone without an account create one? INVITATION_STATE is None when no code
    was given, else what the instance said about it (Valid or a problem).

    A code that was given must be valid in every mode: a bad code is never silently
    dropped, so the person learns what happened to their invitation.
    """
    if registration == DISABLED:
        return Decision(False, "registrationDisabled")
    if invitation_state is not None and invitation_state != VALID:
        return Decision(False, f"invitation{invitation_state}")
    if registration == INVITATION_ONLY and invitation_state != VALID:
        return Decision(False, "invitationRequired")
    if registration not in (OPEN, INVITATION_ONLY):
        return Decision(False, "registrationDisabled")  # an unknown mode never opens the door
    return Decision(True)


def password_problem(password: str, minimum: int = 12) -> str:
    """A message key when the password cannot be used, else ''."""
    if len(password) < minimum:
        return "passwordTooShort"
    if len(password) > 1024:
        return "passwordTooLong"
    return ""


@dataclass
class Backoff:
    """Exponential back-off after failed passwords, kept per key (an account, an address).

    The first FREE failures cost nothing; then each failure doubles the wait, up to CAP
    seconds. A key untouched for FORGET seconds starts over.
    """

    free: int = 3
    base: float = 5.0
    cap: float = 900.0
    forget: float = 3600.0
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (failures - self.free)))

    def wait(self, key: str, now: float) -> float:
        """Seconds before KEY may try again (0: now)."""
        count, last = self._failures.get(key, (0, 0.0))
        if count and now - last > self.forget:
            self._failures.pop(key, None)
            return 0.0
        return max(0.0, last + self.delay(count) - now)

    def failed(self, key: str, now: float) -> None:
        count, last = self._failures.get(key, (0, 0.0))
        if count and now - last > self.forget:
            count = 0
        self._failures[key] = (count + 1, now)
        if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
            oldest = min(self._failures, key=lambda k: self._failures[k][1])
            self._failures.pop(oldest)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
