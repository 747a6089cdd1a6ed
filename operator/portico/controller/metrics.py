"""Prometheus metrics: what a platform team graphs and alerts on."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

PORTALS = Gauge("portico_portals", "Portals by phase", ["phase"])
RECONCILE_SECONDS = Histogram(
    "portico_reconcile_duration_seconds",
    "Time one reconcile of a portal takes",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "portico_reconcile_errors_total", "Reconciles that failed (recorded in status, retried)"
)
API_ERRORS = Counter("portico_api_errors_total", "Kubernetes API errors", ["status"])
WRITES = Counter("portico_api_writes_total", "Writes made to the API", ["kind", "verb"])
WRITES_SKIPPED = Counter(
    "portico_api_writes_skipped_total", "Child applies skipped because nothing changed", ["kind"]
)
RECONCILES_UNCHANGED = Counter(
    "portico_reconciles_unchanged_total",
    "Reconciles skipped: every input at the version the last quiet decision saw, no timer due",
)
CERTIFICATE_EXPIRY = Gauge(
    "portico_certificate_expiry_seconds",
    "Seconds until the custom-domain certificate of a portal expires",
    ["namespace", "portal"],
)
NOTIFICATIONS = Counter(
    "portico_notifications_total",
    "Notification deliveries by channel (email, webhook) and result (sent, failed, uncertain)",
    ["channel", "result"],
)
EVENTS_FAILED = Counter("portico_events_failed_total", "Events that could not be posted")


def forget_portal(namespace: str, portal: str) -> None:
    """A deleted portal leaves no series behind."""
    with contextlib.suppress(KeyError):
        CERTIFICATE_EXPIRY.remove(namespace, portal)
