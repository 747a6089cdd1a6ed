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


@dataclass(frozen=True)
class Reservation:
    """A deleted holder's name, kept for its namespace: a GitOps delete-and-recreate (or a
    rename of the Portal) in that namespace keeps it; a portal elsewhere waits."""

    namespace: str
    until: str  # RFC 3339, UTC (sorts as text)

    def binds(self, claimants: Iterable[Claimant], now: str) -> bool:
        """In force until UNTIL, and after it for as long as a portal there claims it."""
        return now < self.until or any(c.namespace == self.namespace for c in claimants)


def contenders(
    claimants: Iterable[Claimant], reservation: Reservation | None, now: str
) -> list[Claimant]:
    """Who may hold the name, oldest first: only the reserved namespace's while it binds."""
    found = sorted(claimants)
    if reservation is not None and reservation.binds(found, now):
        return [c for c in found if c.namespace == reservation.namespace]
    return found
