"""Cluster-wide claims on a subdomain or custom host: the older claim wins (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Claimant:
    """Ordered oldest first; namespace and name break a tie in creation time."""

    created: str  # RFC 3339 creationTimestamp sorts as text
    namespace: str
    name: str
    subdomain: str = ""
    hostname: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def owner(claimants: Iterable[Claimant], value: str, attr: str) -> Claimant | None:
    """The oldest claimant whose ATTR ('subdomain' or 'hostname') equals VALUE."""
    contenders = sorted(c for c in claimants if value and getattr(c, attr) == value)
    return contenders[0] if contenders else None
