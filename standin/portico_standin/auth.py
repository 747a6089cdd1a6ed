"""Who is calling: the instance's own credentials (everything) or a portal-scoped token.

Portal-scoped tokens are minted by the token exchange (tokens.py) for one
`{namespace}/{portal}`: they may call that portal's paths (`http.PORTAL`) and the
one instance-wide read a runtime needs (`GET /portico/v1/instance`), nothing else.
Only a hash of each token is kept; an expired or revoked token is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from portico_standin.state import InstanceState, store


@dataclass(frozen=True)
class Caller:
    """`portal` is None for the instance's own credentials, else the `(namespace, name)`
    the caller's token is valid for."""

    portal: tuple[str, str] | None = None

    def may_act_for(self, namespace: str, name: str) -> bool:
        return self.portal is None or self.portal == (namespace, name)


@dataclass
class Grant:
    id: str
    portal: tuple[str, str]
    expires: float  # seconds since the epoch
    revoked: bool = False


@dataclass
class Tokens:
    """Issued portal tokens by the SHA-256 of their value (the value itself is not kept)."""

    by_hash: dict[str, Grant] = field(default_factory=dict)
    by_id: dict[str, str] = field(default_factory=dict)  # id → hash
    clock: Callable[[], float] = time.time

    def add(self, value: str, grant: Grant) -> None:
        digest = digest_of(value)
        self.by_hash[digest] = grant
        self.by_id[grant.id] = digest

    def revoke(self, token_id: str) -> bool:
        digest = self.by_id.get(token_id)
        grant = self.by_hash.get(digest or "")
        if grant is None:
            return False
        grant.revoked = True
        return True

    def valid(self, value: str) -> Grant | None:
        grant = self.by_hash.get(digest_of(value))
        if grant is None or grant.revoked or self.clock() >= grant.expires:
            return None
        return grant


def digest_of(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def caller(request: Request, state: InstanceState) -> Caller | None:
    """The authenticated caller, or None (answer 401)."""
    given = request.headers.get("authorization", "")
    if hmac.compare_digest(given.encode(), state.authorization.encode()):
        return Caller()
    scheme, _, value = given.partition(" ")
    if scheme.lower() == "bearer" and value:
        grant = store(state, Tokens).valid(value.strip())
        if grant is not None:
            return Caller(portal=grant.portal)
    return None


def instance_caller(request: Request, state: InstanceState) -> Caller | None:
    """The caller if it holds the instance's own credentials (instance-wide endpoints)."""
    found = caller(request, state)
    return found if found is not None and found.portal is None else None


def portal_caller(request: Request, state: InstanceState) -> Caller | None:
    """The caller if it may act for the portal in the path (`{ns}`, `{name}`), else None."""
    found = caller(request, state)
    ns, name = request.path_params.get("ns", ""), request.path_params.get("name", "")
    return found if found is not None and found.may_act_for(ns, name) else None
