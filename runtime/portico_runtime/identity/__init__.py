"""Sign-in and registration: sessions, local accounts, OpenID Connect, invitations,
the profile, web roles and site visibility (docs/user-guide.md, "Authentication").

`web.py` adds `routes(reader)` and `middleware(reader)`; other features read only
`visitor.signed_in(request)`, which the session middleware fills in.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from portico_runtime.config import Reader
from portico_runtime.identity import local, oidc, rules
from portico_runtime.identity.backend import Backend
from portico_runtime.identity.sessions import SessionMiddleware


class NoQueryInAccessLog(logging.Filter):
    """uvicorn's access log line without the query string, which may carry an invitation
    code or a password-reset token (both also leave the address bar at once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args: Any = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def _quiet_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, NoQueryInAccessLog) for f in access.filters):
        access.addFilter(NoQueryInAccessLog())


# One instance client per app (its reader) for the routes and the session middleware.
_backends: weakref.WeakKeyDictionary[Reader, Backend] = weakref.WeakKeyDictionary()


def _backend(reader: Reader) -> Backend:
    found = _backends.get(reader)
    if found is None:
        found = _backends[reader] = Backend()
    return found


def routes(reader: Reader) -> list[BaseRoute]:
    _quiet_access_log()
    backend = _backend(reader)
    backoff = rules.Backoff()  # per pod: each replica counts the failures it saw
    return [*local.routes(reader, backend, backoff), *oidc.routes(reader, backend)]


def middleware(reader: Reader) -> Middleware:
    return Middleware(SessionMiddleware, reader=reader, backend=_backend(reader))
