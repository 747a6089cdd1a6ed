"""The web-role gate, applied on the server: who may read an item of content.

Pure: the instance filters by the roles the runtime names, and the runtime checks every
item again before it renders it (an instance that ignores `roles` shows nothing extra).
"""

from __future__ import annotations

from collections.abc import Iterable

from portico_runtime.visitor import Contact


def roles_of(visitor: Contact | None) -> frozenset[str]:
    """An anonymous visitor has no role; a contact has theirs (Authenticated included)."""
    return frozenset() if visitor is None else visitor.roles


def may_read(web_roles: Iterable[str], roles: frozenset[str]) -> bool:
    """An item without web roles is for everyone who may see the site; else one role must match."""
    wanted = frozenset(web_roles)
    return not wanted or bool(wanted & roles)


def item_roles(item: object) -> tuple[str, ...]:
    """The `webRoles` of an item as the instance sent it; anything malformed reads as
    'nobody' (a role no visitor has), never as 'everyone'."""
    if not isinstance(item, dict):
        return ("\0",)
    roles = item.get("webRoles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return ("\0",)
    return tuple(roles)


def readable(item: object, roles: frozenset[str]) -> bool:
    return may_read(item_roles(item), roles)
