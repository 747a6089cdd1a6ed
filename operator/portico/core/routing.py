"""Where a portal's hosts lead (pure): to its runtime, or to the shared page server.

The page server (one for every portal, installed with the operator) holds the
lowest-priority route for `*.<baseDomain>` and the ingress's catch-all, so a host
without a route of its own shows the portal's public page (docs/runtime-contract.md,
"Pages"). A portal's own Ingress, which wins over that route, exists only while its
runtime serves:

- from the moment the portal is Ready (the page server passes requests on to the
  runtime until the ingress controller has applied the new route);
- through a spec edit, while runtime pods of either spec are available, so an edit
  never shows the page;
- not while it is Configuring for the first time, Failed or Expired: the page shows
  (but a serving portal whose new certificate is rejected keeps serving with the last
  good one: a bad upload never takes a site down).

No Deployment, ConfigMap or Service switch per portal: a waiting portal costs no pod
and no write beyond its own children.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portico.certificates import CertReason
from portico.core import names
from portico.core.observed import Key

# Phases in which the URL shows the page rather than the runtime (an expired trial or a
# stopped site has no runtime to show; a Deprovisioned one has no Ingress at all).
PAGE_PHASES = frozenset({"Configuring", "Failed", "Expired", "Stopped", "Deprovisioned"})


def runtime_up(children: Mapping[Key, Mapping[str, Any]], portal: str) -> bool:
    """The portal's own route exists and runtime pods (of whichever spec) are available."""
    if ("Ingress", names.runtime_name(portal)) not in children:
        return False
    deployment = children.get(("Deployment", names.runtime_name(portal))) or {}
    return int((deployment.get("status") or {}).get("availableReplicas", 0)) > 0


# A rejected certificate of a serving portal: the last good one stays in its Secret and
# the runtime is unharmed, so the site keeps serving (status says Failed until fixed).
KEEPS_SERVING = frozenset(CertReason) - {CertReason.CERTIFICATE_EXPIRING_SOON}


def runtime_serves(phase: str, up: bool = False, reason: str = "") -> bool:
    if phase not in PAGE_PHASES:
        return True
    return up and (phase == "Configuring" or (phase == "Failed" and reason in KEEPS_SERVING))


def route(
    desired: list[dict[str, Any]],
    phase: str,
    up: bool,
    reason: str = "",
    maintenance: bool = False,
) -> list[dict[str, Any]]:
    """DESIRED without the portal's Ingress while its hosts should show the page (and in
    maintenance mode, whose page the page server shows while the runtime keeps running)."""
    if runtime_serves(phase, up, reason) and not maintenance:
        return desired
    return [m for m in desired if m["kind"] != "Ingress"]
