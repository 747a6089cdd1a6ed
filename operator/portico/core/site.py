"""spec.state (pure): Running, Stopped or Deprovisioned, and what each keeps.

- Stopped: the runtime at zero replicas, no route of its own (the page server's
  "stopped" page answers, 503); configuration, credentials, certificate kept.
- Deprovisioned: the host released. Only the configuration ConfigMap, the
  certificate (Secret, cert-manager Certificate) and the status stay; the
  runtime, Service, Ingress, Jobs and the instance credentials go (their token
  is revoked), and the portal neither holds nor contends for its names.
- Running again after Deprovisioned reactivates it: its claim counts from the
  moment it takes its names back (status.reclaimedAt), so a portal that took the
  subdomain meanwhile keeps it and this one reports SubdomainTaken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portico.core import names
from portico.core.conditions import Condition, false
from portico.core.observed import Key

RUNNING, STOPPED, DEPROVISIONED = "Running", "Stopped", "Deprovisioned"
# Sorts after every RFC 3339 time: a reactivating portal's claim is the youngest until
# it holds its names again.
REACTIVATING = "~reactivating"


def stopped() -> Condition:
    return false(
        "Ready",
        STOPPED,
        "spec.state is Stopped: the runtime is scaled to zero and the URL shows the "
        "stopped page; set spec.state to Running to start it again",
    )


def deprovisioned() -> Condition:
    return false(
        "Ready",
        DEPROVISIONED,
        "spec.state is Deprovisioned: the runtime, routing, credentials and the claims on "
        "its subdomain and custom host are released (configuration, certificate and status "
        "are kept); set spec.state to Running to reactivate it under its old subdomain",
    )


def kept(portal: str) -> set[Key]:
    """The children a Deprovisioned portal keeps, when they exist."""
    return {
        ("ConfigMap", names.config_name(portal)),
        ("Secret", names.tls_secret_name(portal)),
        ("Certificate", names.runtime_name(portal)),
    }


def reactivation_note(status: Mapping[str, Any]) -> str:
    """Appended to SubdomainTaken for a portal coming back from Deprovisioned."""
    if not status.get("releasedAt"):
        return ""
    return (
        f" (this portal released it when it was Deprovisioned at {status['releasedAt']}; "
        "set spec.state back to Deprovisioned until it is free)"
    )


def claim_since(obj: Mapping[str, Any]) -> str:
    """When a Portal's claim on its names began, for the older-claim-wins rule: its
    creation, or its reactivation after a Deprovisioned period."""
    status = obj.get("status") or {}
    if status.get("releasedAt"):
        return REACTIVATING
    return str(
        status.get("reclaimedAt") or (obj.get("metadata") or {}).get("creationTimestamp", "")
    )


def released_status(
    new: dict[str, Any], old: Mapping[str, Any], stamp: str, released: bool, holds: bool
) -> None:
    """status.releasedAt / reclaimedAt for this plan. RELEASED: the portal is
    Deprovisioned; HOLDS: it holds its subdomain now (no other portal's claim is older)."""
    if released:
        new["releasedAt"] = old.get("releasedAt") or stamp
        return
    if old.get("releasedAt") and not holds:
        new["releasedAt"] = old["releasedAt"]  # still waiting for its names
    elif old.get("releasedAt"):
        new["reclaimedAt"] = stamp  # took its names back just now
    if old.get("reclaimedAt") and "reclaimedAt" not in new:
        new["reclaimedAt"] = old["reclaimedAt"]
