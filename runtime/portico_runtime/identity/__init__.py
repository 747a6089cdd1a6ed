"""Sign-in and registration: sessions, local accounts, OpenID Connect, invitations,
the profile, web roles and site visibility (docs/user-guide.md, "Authentication").

`web.py` adds `routes(reader)` and `middleware(reader)`; other features read only
`visitor.signed_in(request)`, which the session middleware fills in.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from portico_runtime.config import Reader
from portico_runtime.identity import local, oidc, rules
from portico_runtime.identity.backend import Backend
from portico_runtime.identity.sessions import SessionMiddleware


def routes(reader: Reader) -> list[BaseRoute]:
    backend = Backend()
    backoff = rules.Backoff()  # per pod: each replica counts the failures it saw
    return [*local.routes(reader, backend, backoff), *oidc.routes(reader, backend)]


def middleware(reader: Reader) -> Middleware:
    return Middleware(SessionMiddleware, reader=reader)
