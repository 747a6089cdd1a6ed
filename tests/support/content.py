"""Runtime tests of content and interactions: a signed-in visitor without the sign-in flow.

The identity layer sets `request.state.contact`; here a tiny middleware does it from a
test-only header, so the content pages and the interactions see exactly what they would
see behind a real session.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from portico_runtime.visitor import AUTHENTICATED, Contact

HEADER = b"x-test-contact"


class VisitorHeader:
    """`x-test-contact: ID|EMAIL|ROLE,ROLE` makes the request a signed-in contact's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", []):
                if name == HEADER:
                    cid, email, roles = ([*value.decode().split("|"), "", ""])[:3]
                    given = {r for r in roles.split(",") if r}
                    contact = Contact(cid, email, roles=frozenset({AUTHENTICATED, *given}))
                    scope.setdefault("state", {})["contact"] = contact
        await self.app(scope, receive, send)


def with_visitors(app: Starlette) -> Starlette:
    # Innermost, so it speaks after the session middleware (which sets the visitor too).
    app.user_middleware.append(Middleware(VisitorHeader))
    return app


def as_contact(cid: str = "c-1", email: str = "ana@example.com", *roles: str) -> dict[str, Any]:
    return {HEADER.decode(): f"{cid}|{email}|{','.join(roles)}"}
