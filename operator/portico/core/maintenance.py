"""Maintenance mode (pure): spec.maintenance → what the page server shows, the
`<portal>-maintenance` ConfigMap it reads a custom page from, and the condition.

While maintenance is on the portal's own Ingress is not applied (core/routing.py), so
its hosts reach the shared page server, which answers 503 with Retry-After: the default
page with the owner's message, or the custom page. The runtime keeps running and Ready
(its probes, and /healthz through the page server, still reach it).

A custom page is copied from the owner's ConfigMap into one Portico owns, labelled so
the page server's watch (a label selector) sees only such pages, never other
ConfigMaps. A page that is missing or over MAX_PAGE_BYTES falls back to the default
page, and the MaintenancePage condition names the problem and its fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portico.api.model import Portal
from portico.core import names
from portico.core.conditions import Condition, false, true

MAX_PAGE_BYTES = 1024 * 1024
PAGE_KEY = "page.html"
COMPONENT = "maintenance"
NOT_FOUND = "MaintenancePageNotFound"
TOO_LARGE = "MaintenancePageTooLarge"


@dataclass(frozen=True)
class Decision:
    status: dict[str, Any]  # status.maintenance, what the page server reads
    condition: Condition
    page: str | None  # the custom page's HTML, for the `<portal>-maintenance` ConfigMap


def decide(portal: Portal, source: Mapping[str, Any] | None) -> Decision | None:
    """None when maintenance is off. SOURCE: the owner's ConfigMap (None: not found)."""
    spec = portal.maintenance
    if spec is None:
        return None
    status: dict[str, Any] = {"enabled": True, "retryAfterSeconds": spec.retry_after}
    if spec.message:
        status["message"] = spec.message
    ref = spec.page
    if ref is None:
        status["page"] = "Default"
        return Decision(status, true("MaintenancePage", "DefaultPage", _shown("the default")), None)
    where = f"key {ref.key} of ConfigMap {ref.name}"
    data = dict((source or {}).get("data") or {})
    html = data.get(ref.key)
    status["page"] = "Default"
    if source is None or html is None:
        problem = "does not exist" if source is None else "has no such key"
        return Decision(
            status,
            false(
                "MaintenancePage",
                NOT_FOUND,
                f"the custom maintenance page ({where} in namespace {portal.namespace}) "
                f"{'' if source is None else 'is missing: the ConfigMap '}{problem}; the "
                "default maintenance page is shown. Create it or fix "
                "spec.maintenance.page.configMapRef",
            ),
            None,
        )
    size = len(html.encode())
    if size > MAX_PAGE_BYTES:
        return Decision(
            status,
            false(
                "MaintenancePage",
                TOO_LARGE,
                f"the custom maintenance page ({where}) is {size} bytes, over the limit of "
                f"{MAX_PAGE_BYTES} (1 MiB); the default maintenance page is shown. Make it "
                "smaller (put images and styles elsewhere)",
            ),
            None,
        )
    status["page"] = "Custom"
    return Decision(
        status, true("MaintenancePage", "CustomPage", _shown(f"the custom ({where})")), html
    )


def _shown(which: str) -> str:
    return f"maintenance mode is on: visitors get {which} maintenance page with HTTP 503"


def config_map(portal: Portal, html: str) -> dict[str, Any]:
    """The copy of the custom page the page server reads (owned, labelled, pruned after)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.maintenance_page_name(portal.name),
            "namespace": portal.namespace,
            "labels": names.labels(portal.name, COMPONENT),
            "ownerReferences": [portal.owner_reference()],
        },
        "data": {PAGE_KEY: html},
    }
