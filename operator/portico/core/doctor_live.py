"""`portico doctor`'s live verdicts (pure): what a probe saw in, a Finding out.

The URL through the ingress, the certificate it serves, DNS from the configured
resolvers (judged by the operator's own `portico.domain.judge`) and the runtime's
interaction counters (the hub's answers). The probes are in `portico.cli.doctor`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from portico import domain
from portico.certificates import checks
from portico.certificates.convert import summarize
from portico.core.doctor import Finding, Reach, Result, passed

# The phases in which the URL answers the shared page server's page (503) by design.
PAGE_PHASES = ("Configuring", "Failed", "Expired", "Stopped")


def url(address: str, portal: Mapping[str, Any], reach: Reach) -> Finding:
    """Does ADDRESS answer what the portal's phase and spec say it should?"""
    spec, status = portal.get("spec") or {}, portal.get("status") or {}
    phase = str(status.get("phase", ""))
    maintenance = bool((spec.get("maintenance") or {}).get("enabled"))
    host = address.split("://", 1)[-1].split("/", 1)[0]
    if phase == "Deprovisioned":
        return passed("Routing", address, "Deprovisioned: the host is released, not checked")
    if reach.status is None:
        return Finding(
            "Routing",
            address,
            Result.ERROR,
            f"no answer ({reach.error})",
            f"Check that DNS for {host} points at the ingress controller and that it runs "
            "(portico doctor --ingress-address IP[:PORT] asks one address directly)",
        )
    page = reach.status == 503
    if phase == "Ready" and maintenance:
        if page:
            return passed("Routing", address, "503: the maintenance page, as spec.maintenance asks")
        return Finding(
            "Routing",
            address,
            Result.WARNING,
            f"HTTP {reach.status}, but spec.maintenance is on: visitors should get the "
            "maintenance page (503)",
            "Wait a few seconds for the ingress to take the change; if it stays, look at the "
            "Ingress and the page server",
        )
    if phase == "Ready":
        if reach.status < 500:
            return passed("Routing", address, f"HTTP {reach.status} from the portal")
        return Finding(
            "Routing",
            address,
            Result.ERROR,
            f"HTTP {reach.status} although the portal is Ready: visitors get an error",
            "Look at the portal's Ingress and the ingress controller's log; check that the "
            "runtime's pods are ready",
        )
    if phase in PAGE_PHASES and page:
        return passed("Routing", address, f"503: the page server's page, as expected ({phase})")
    return Finding(
        "Routing",
        address,
        Result.WARNING,
        f"HTTP {reach.status} while the portal is {phase or 'without a phase'}: expected the "
        "page server's 503 page",
        "Check that the page server runs (the chart installs it beside the operator)",
    )


def _fingerprint(value: Any) -> str:
    return str(value or "").replace(":", "").lower()


def served_certificate(
    host: str,
    der: bytes | None,
    expected: Mapping[str, Any] | None,
    now: datetime.datetime,
) -> Finding:
    """The certificate HOST serves: it covers HOST, is in date and, when Portico bound one
    (status.certificate), it is that one."""
    check = f"TLS {host}"
    if der is None:
        return Finding(
            "Certificate",
            check,
            Result.ERROR,
            "no certificate was served (no TLS answer)",
            f"Check that {host} reaches the ingress controller over HTTPS (port 443)",
        )
    try:
        leaf = x509.load_der_x509_certificate(der)
    except ValueError:
        return Finding(
            "Certificate",
            check,
            Result.ERROR,
            "the served certificate could not be read",
            "Check the ingress controller's TLS configuration",
        )
    summary = summarize(leaf)
    served = f"{summary.subject}, issued by {summary.issuer}, SHA-256 {summary.sha256_fingerprint}"
    if expected and _fingerprint(expected.get("sha256Fingerprint")) != _fingerprint(
        summary.sha256_fingerprint
    ):
        return Finding(
            "Certificate",
            check,
            Result.ERROR,
            f"serves {served}, not the certificate Portico bound "
            f"({expected.get('subject')}, SHA-256 {expected.get('sha256Fingerprint')})",
            f"Check that DNS for {host} points at this cluster's ingress controller and that "
            "the controller uses the portal's Ingress TLS Secret (not a default certificate)",
        )
    problems = checks.hostname_mismatch(leaf, host) + checks.validity([leaf], now)
    if problems:
        return Finding(
            "Certificate",
            check,
            Result.ERROR,
            f"serves {served}: " + "; ".join(p.message for p in problems),
            "Replace the certificate (custom domain: its Secret; default host: the ingress "
            "controller's default certificate for the base domain)",
        )
    bound = " (the one in status.certificate)" if expected else ""
    return passed(
        "Certificate", check, f"serves {served}{bound}, valid until {summary.not_after:%Y-%m-%d}"
    )


def dns(check: domain.DomainCheck, resolvers: str) -> Finding:
    """The operator's own verdict on a fresh lookup from RESOLVERS."""
    name = f"CNAME {check.host}"
    text = f"{check.message} (asked {resolvers})"
    if check.state is domain.DomainState.VERIFIED:
        return passed("DNS", name, text)
    if check.state is domain.DomainState.UNKNOWN:
        return Finding(
            "DNS",
            name,
            Result.WARNING,
            text,
            "Check that the resolvers answer (--nameserver names others), then run again",
        )
    fix = {
        domain.DomainReason.CNAME_MISSING: domain.missing_message(check.host, check.target),
        domain.DomainReason.CONFLICTING_RECORDS: f"Remove the A/AAAA records of {check.host} "
        f"and keep one CNAME to {check.target}",
    }.get(check.reason, f"Change the CNAME record for {check.host} to {check.target}")
    return Finding("DNS", name, Result.ERROR, text, fix)


# --- the Customer Insights hub, from the runtime's counters ----------------------------------

HUB_SINK = "customerInsights"
COUNTER = "portico_runtime_interactions"
OUTCOMES = ("sent", "retried", "dropped", "rejected")  # the runtime's (interactions/metrics.py)


def hub_counts(exposition: str) -> dict[str, float]:
    """Per outcome, the hub's interactions counted in one runtime pod's /metrics text."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != COUNTER:
            continue
        for sample in family.samples:
            if sample.name == COUNTER + "_total" and sample.labels.get("sink") == HUB_SINK:
                outcome = sample.labels.get("outcome", "")
                totals[outcome] = totals.get(outcome, 0.0) + sample.value
    return totals


def hub(uri: str, counts: Mapping[str, Mapping[str, float]], unread: Mapping[str, str]) -> Finding:
    """The hub's health as the runtime's pods saw it since they started.

    COUNTS: per pod, the outcomes of hub_counts; UNREAD: per pod, why its counters
    could not be read. The counters are totals since each pod started: a rejection
    is an error whenever it happened, retries without one sent mean unreachable.
    """
    check = f"hub {uri}"
    total = {o: sum(c.get(o, 0.0) for c in counts.values()) for o in OUTCOMES}
    if total["rejected"]:
        return Finding(
            "Analytics",
            check,
            Result.ERROR,
            f"the hub rejected {total['rejected']:g} interaction(s) (4xx), sent "
            f"{total['sent']:g}, since the runtime's pods started",
            "Check spec.analytics.customerInsights.policyName and the shared key in its "
            "Secret against the hub's shared-access policy (it needs send)",
        )
    if total["retried"] and not total["sent"]:
        return Finding(
            "Analytics",
            check,
            Result.ERROR,
            f"the hub is unreachable or failing: {total['retried']:g} retries and none sent "
            "since the runtime's pods started",
            "Check that the hub's URI is right and reachable from the cluster (egress, "
            "NetworkPolicy, proxy); interactions are queued meanwhile",
        )
    if total["dropped"]:
        return Finding(
            "Analytics",
            check,
            Result.WARNING,
            f"{total['dropped']:g} interaction(s) dropped (the queue was full while the hub "
            f"was away), {total['sent']:g} sent",
            "Raise the operator's interactionsQueueSize if the hub is often away this long",
        )
    if not counts:
        why = "; ".join(f"{pod}: {reason}" for pod, reason in sorted(unread.items()))
        return Finding(
            "Analytics",
            check,
            Result.WARNING,
            "could not read the runtime's counters, so the hub's answers are unknown"
            + (f" ({why})" if why else " (no runtime pod runs)"),
            "Read GET /metrics on a runtime pod (port 8080; kubectl port-forward) and look "
            "at portico_runtime_interactions_total, or allow get on pods/proxy",
        )
    partial = f" ({len(unread)} pod(s) unread)" if unread else ""
    if total["retried"]:
        return Finding(
            "Analytics",
            check,
            Result.WARNING,
            f"{total['sent']:g} sent, after {total['retried']:g} retries: the hub was slow or "
            f"away at times{partial}",
            "Nothing to do if it passes; watch portico_runtime_interactions_total",
        )
    return passed("Analytics", check, f"{total['sent']:g} sent, none rejected or retried{partial}")
