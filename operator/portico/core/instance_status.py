"""A PortalInstance's status (pure): how many portals link to it, and whether it is usable.

The controller observes whether the credentials Secret exists and counts the
portals; this decides what the status says, and the controller only writes it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from portico.api.model import PortalInstance
from portico.core import names
from portico.core.conditions import false, to_status, true
from portico.core.reasons import Failure
from portico.core.references import Problem


def decide_instance(
    obj: Mapping[str, Any],
    instance: PortalInstance,
    credentials_exist: bool,
    portal_count: int,
    now: datetime.datetime,
    refused: Problem | None = None,
) -> dict[str, Any]:
    """The status OBJ (the PortalInstance as stored) should have; REFUSED: its
    credentialsSecretRef names a namespace the operator does not read from."""
    ns, secret = instance.credentials
    if refused is not None:
        ready = false("Ready", refused.reason, refused.message)
    elif credentials_exist:
        ready = true("Ready", "Available", "portals can link to this instance")
    else:
        ready = false(
            "Ready",
            Failure.CREDENTIALS_NOT_FOUND,
            f"the credentials Secret {ns}/{secret} does not exist; create it",
        )
    old = obj.get("status") or {}
    generation = int(obj["metadata"].get("generation", 1))
    return {
        "observedGeneration": generation,
        "portalCount": portal_count,
        "conditions": to_status([ready], old.get("conditions") or (), generation, names.iso(now)),
    }
