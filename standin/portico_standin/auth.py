"""Who is calling: the instance's own credentials (everything) or a portal-scoped token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from portico_standin.state import InstanceState


@dataclass(frozen=True)
class Caller:
    """`portal` is None for the instance's own credentials, else the `(namespace, name)`
    the caller's token is valid for."""

    portal: tuple[str, str] | None = None

    def may_act_for(self, namespace: str, name: str) -> bool:
        return self.portal is None or self.portal == (namespace, name)


def caller(request: Request, state: InstanceState) -> Caller | None:
    """The authenticated caller, or None (answer 401)."""
    given = request.headers.get("authorization", "")
    if hmac.compare_digest(given.encode(), state.authorization.encode()):
        return Caller()
    return None


def portal_caller(request: Request, state: InstanceState) -> Caller | None:
    """The caller if it may act for the portal in the path (`{ns}`, `{name}`), else None."""
    found = caller(request, state)
    ns, name = request.path_params.get("ns", ""), request.path_params.get("name", "")
    return found if found is not None and found.may_act_for(ns, name) else None
