"""The claim reservations of deleted portals, kept in one ConfigMap (pure: parse and render).

ConfigMap `portico-reservations` in the operator's namespace, one key per name:
`subdomain.<subdomain>` or `host.<hostname>` → `{"namespace", "until"}`. Read once at
start and written only when a deletion changes it, so a reservation survives restarts
at no cost at rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from portico.core.claims import Claimant, Reservation

NAME = "portico-reservations"
Name = tuple[str, str]  # ("subdomain" | "host", value)


def parse(obj: Mapping[str, Any] | None) -> dict[Name, Reservation]:
    out: dict[Name, Reservation] = {}
    for key, raw in ((obj or {}).get("data") or {}).items():
        kind, _, value = key.partition(".")
        try:
            data = json.loads(raw)
            reservation = Reservation(str(data["namespace"]), str(data["until"]))
        except (ValueError, KeyError, TypeError):
            continue  # not ours to understand: dropped at the next write
        if kind in ("subdomain", "host") and value:
            out[(kind, value)] = reservation
    return out


def live(
    kept: Mapping[Name, Reservation],
    claimants: Callable[[Name], Iterable[Claimant]],
    now: str,
) -> dict[Name, Reservation]:
    """The reservations still in force (past their time only while a portal there claims)."""
    return {name: r for name, r in kept.items() if r.binds(claimants(name), now)}


def manifest(namespace: str, kept: Mapping[Name, Reservation]) -> dict[str, Any]:
    data = {
        f"{kind}.{value}": json.dumps({"namespace": r.namespace, "until": r.until}, sort_keys=True)
        for (kind, value), r in sorted(kept.items())
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "portico"},
        },
        "data": data,
    }
