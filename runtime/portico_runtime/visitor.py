"""Who is visiting: the signed-in contact, if any.

The identity layer (sessions) puts the contact on `request.state.contact`; everything
else (content, the role gate, interactions) reads it only through `signed_in()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

# Every signed-in contact has this web role, beside the ones they are given (a union).
AUTHENTICATED = "Authenticated"


@dataclass(frozen=True)
class Contact:
    """A contact of the backing instance, as the runtime knows them for one request."""

    id: str
    email: str
    first_name: str = ""
    last_name: str = ""
    roles: frozenset[str] = frozenset({AUTHENTICATED})


def signed_in(request: HTTPConnection) -> Contact | None:
    """The signed-in contact, or None for an anonymous visitor."""
    found = getattr(request.state, "contact", None)
    return found if isinstance(found, Contact) else None
