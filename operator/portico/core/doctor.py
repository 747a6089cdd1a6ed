"""`portico doctor`'s verdicts (pure): what was read or probed in, one Finding per check out.

The I/O (the API server, DNS, the portal's URL, the instance, the runtime's
counters) is in `portico.cli.doctor`; every rule here is tested without a cluster.
The checks the operator makes are not made again: their verdicts are read from the
Portal's conditions, and DNS is judged by the operator's own `portico.domain.judge`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from portico.core.reasons import RECONCILE_ERROR, is_failure


class Result(StrEnum):
    PASS = "pass"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    category: str
    check: str
    result: Result
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def passed(category: str, check: str, message: str) -> Finding:
    return Finding(category, check, Result.PASS, message)


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when any check found an error, else 0 (warnings do not fail the command)."""
    return 1 if any(f.result is Result.ERROR for f in findings) else 0


# Each condition's category, in the order the portal explains itself (core/conditions.py).
CATEGORIES = {
    "InstanceLinked": "Instance",
    "SolutionsInstalled": "Provisioning",
    "RuntimeAvailable": "Runtime",
    "DomainVerified": "DNS",
    "CertificateReady": "Certificate",
    "TranslationsImported": "Provisioning",
    "AnalyticsConfigured": "Analytics",
    "MaintenancePage": "Site",
    "Synced": "Operator",
    "Ready": "Site",
}

# What a person does about each reason (docs/user-guide.md, "Troubleshooting"). A reason
# not listed here is fixed as its condition's message says (the operator writes messages
# that name the fix: "Please add a CNAME record for ...").
FIXES = {
    "InstanceNotFound": "Create the PortalInstance named in spec.instanceRef, or point the "
    "portal at an existing one",
    "NamespaceNotAllowed": "Label the namespace so the instance's allowedNamespaces selects "
    "it, or ask the instance's owner to allow it",
    "LanguageNotInstalled": "Install the language on the instance (spec.languages), or choose "
    "another language",
    "AdministratorNotAllowed": "Add the administrator to the instance's spec.administrators, "
    "or choose a listed one",
    "CredentialsNotFound": "Create the instance's credentials Secret (its credentialsSecretRef)",
    "CredentialsNotAllowed": "Move the instance's credentials Secret to the operator's "
    "namespace, or add its namespace to instanceCredentialsNamespaces",
    "HostnameNotAllowed": "Use a custom host in your own domain, not under the base domain",
    "ImageNotAllowed": "Remove spec.runtime.image, or ask the instance's owner to allow the "
    "image (allowedImages)",
    "PrerequisiteMissing": "Add the solution the template needs to the instance; the portal "
    "continues by itself",
    "InstallFailed": "Fix the cause the message names, then run `portico restart NAME` or "
    "edit the spec",
    "ImportFailed": "Fix the cause the message names, then set portico.dev/refresh-translations",
    "SubdomainTaken": "Choose another spec.subdomain, or delete the portal that holds it",
    "DomainTaken": "Remove the host from the other portal, or choose another host",
    "SecretNotFound": "Create the Secret the message names, labelled portico.dev/secret-for",
    "SecretNotLabelled": "Label the Secret: kubectl label secret NAME "
    "portico.dev/secret-for=PORTAL",
    "SecretKeyMissing": "Add the key the message names to the Secret",
    "CertManagerNotEnabled": "Use pfxSecretRef or secretRef, or install the operator with "
    "certManager.enabled=true",
    "IssuerNotAllowed": "Use an allowed issuer (the message lists them), pfxSecretRef or secretRef",
    "ChildConflict": "Delete or rename the object the message names, or give the Portal "
    "another name",
    RECONCILE_ERROR: "Fix what the API server's answer names (RBAC, quota, admission "
    "policy); Portico retries by itself",
    "ProgressDeadlineExceeded": "Look at the runtime's pods (kubectl describe deployment "
    "NAME): often an image or resource problem",
    "DNSUnavailable": "Check that the operator's DNS servers answer; Portico re-checks by "
    "itself (portico restart --recheck to re-check now)",
    "CertificateExpiringSoon": "Replace the certificate in its Secret before it expires",
    "MaintenancePageNotFound": "Create the ConfigMap and key of maintenance.page, then "
    "portico restart --recheck",
    "MaintenancePageTooLarge": "Make the maintenance page smaller than 1 MiB, then "
    "portico restart --recheck",
    "Expired": "Set spec.type to Production to reactivate the trial",
    "Paused": "Set spec.paused to false",
    "Stopped": "Set spec.state to Running to start the site",
    "Deprovisioned": "Set spec.state to Running to reactivate the site",
}
CERTIFICATE_FIX = "Replace the certificate in its Secret (portico inspect-cert checks a file first)"
WAIT = "Nothing to do: Portico continues by itself; look again if it persists"
# Ready reasons that are choices, not faults: a warning, never an error.
CHOSEN = frozenset({"Paused", "Stopped", "Deprovisioned"})


def fix_for(reason: str, message: str = "") -> str:
    if reason in FIXES:
        return FIXES[reason]
    if is_failure(reason):  # a certificate rejection (CertReason)
        return CERTIFICATE_FIX
    return message or WAIT


def conditions(portal: Mapping[str, Any]) -> list[Finding]:
    """The operator's own checks, as its status reports them."""
    status = portal.get("status") or {}
    if not status.get("conditions"):
        return [
            Finding(
                "Operator",
                "Status",
                Result.ERROR,
                "the portal has no status: the operator has not reconciled it",
                "Check that the operator runs and watches this namespace "
                "(kubectl -n portico-system get pods; its watchNamespaces setting)",
            )
        ]
    found = []
    generation = (portal.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration", generation) < generation:
        found.append(
            Finding(
                "Operator",
                "Status",
                Result.WARNING,
                f"status is for generation {status.get('observedGeneration')}, the spec is "
                f"at {generation}: the operator has not caught up with the last edit",
                "Wait a few seconds; if it stays behind, check the operator's pods and log",
            )
        )
    by_type = {c.get("type"): c for c in status["conditions"]}
    aspects = {c.get("reason") for t, c in by_type.items() if t != "Ready"}
    for type_, category in CATEGORIES.items():
        cond = by_type.get(type_)
        if cond is None:
            continue
        reason, message = str(cond.get("reason", "")), str(cond.get("message", ""))
        if type_ == "Ready" and cond.get("status") != "True" and reason in aspects:
            continue  # Ready repeats an aspect's failure, already listed
        found.append(_condition(category, type_, str(cond.get("status")), reason, message))
    return found


def _condition(category: str, type_: str, status: str, reason: str, message: str) -> Finding:
    text = f"{reason}: {message}" if message else reason
    if status == "True":
        if reason == "CertificateExpiringSoon":
            return Finding(category, type_, Result.WARNING, text, fix_for(reason))
        return passed(category, type_, text)
    if reason in CHOSEN or type_ == "MaintenancePage":
        return Finding(category, type_, Result.WARNING, text, fix_for(reason, message))
    result = Result.ERROR if is_failure(reason) or reason == RECONCILE_ERROR else Result.WARNING
    return Finding(category, type_, result, text, fix_for(reason, message))


# --- recent Warning Events ----------------------------------------------------------------

RECENT = datetime.timedelta(hours=1)
# Kubernetes' own reasons about a portal's children; {object} is `kind/name` of the Event's.
EVENT_FIXES = {
    "BackOff": "The container keeps crashing: read its log (kubectl logs {object} --previous)",
    "FailedScheduling": "No node can run the pod: check resources and node selectors "
    "(kubectl describe {object})",
    "Unhealthy": "A probe fails: read the log (kubectl logs {object})",
    "Failed": "A container could not start (often the image): kubectl describe {object}",
    "FailedCreate": "No pod could be created (quota, admission policy): kubectl describe {object}",
}


def _event_time(event: Mapping[str, Any]) -> str:
    series = event.get("series") or {}
    return str(
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _count(event: Mapping[str, Any]) -> int:
    return int(event.get("count") or (event.get("series") or {}).get("count") or 1)


def _parse(moment: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None


def recent_warnings(
    events: Iterable[Mapping[str, Any]],
    uids: set[str],
    now: datetime.datetime,
    window: datetime.timedelta = RECENT,
) -> list[Finding]:
    """One warning per reason among the Warning Events of the last WINDOW about the
    objects UIDS (the portal and its children), with the newest message."""
    groups: dict[tuple[str, str], list[tuple[datetime.datetime, Mapping[str, Any]]]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if event.get("type") != "Warning" or involved.get("uid") not in uids:
            continue
        at = _parse(_event_time(event))
        if at is None or now - at > window:
            continue
        key = (str(involved.get("kind", "")), str(event.get("reason", "")))
        groups.setdefault(key, []).append((at, event))
    newest = {
        key: (max(found, key=lambda pair: pair[0])[1], sum(_count(e) for _, e in found))
        for key, found in groups.items()
    }
    if not newest:
        return [passed("Events", "Warning Events", f"none in the last {_span(window)}")]
    found = []
    for (kind, reason), (event, count) in sorted(newest.items()):
        name = (event.get("involvedObject") or {}).get("name", "")
        fix = EVENT_FIXES.get(reason, "").format(object=f"{kind.lower()}/{name}")
        times = f" ({count} times)" if count > 1 else ""
        found.append(
            Finding(
                "Events",
                f"{kind} {name}",
                Result.WARNING,
                f"{reason}{times}: {event.get('message', '')}",
                fix or fix_for(reason, f"kubectl describe {kind.lower()}/{name}"),
            )
        )
    return found


def _span(window: datetime.timedelta) -> str:
    hours = window.total_seconds() / 3600
    return "hour" if hours == 1 else f"{hours:g} hours"


# --- the runtime's endpoints -----------------------------------------------------------------


def endpoints(portal: Mapping[str, Any], slices: Iterable[Mapping[str, Any]]) -> Finding:
    """Ready endpoints behind the runtime's Service, against what the portal's state asks."""
    ready = sum(
        1
        for s in slices
        for e in s.get("endpoints") or ()
        if (e.get("conditions") or {}).get("ready", True)
        and not (e.get("conditions") or {}).get("terminating", False)
    )
    spec, status = portal.get("spec") or {}, portal.get("status") or {}
    state, phase = spec.get("state", "Running"), status.get("phase", "")
    if state != "Running" or phase != "Ready":
        # Not serving by design (Stopped, Expired, ...) or not yet (the conditions say why).
        return passed(
            "Runtime", "Endpoints", f"{ready} ready (spec.state {state}, phase {phase or '-'})"
        )
    if ready:
        return passed("Runtime", "Endpoints", f"{ready} ready pod(s) behind the Service")
    name = (portal.get("metadata") or {}).get("name", "NAME")
    return Finding(
        "Runtime",
        "Endpoints",
        Result.ERROR,
        f"no ready pod behind the Service {name}: visitors get no answer from the runtime",
        f"Look at the runtime's pods (kubectl describe deployment {name}; kubectl logs "
        f"deployment/{name})",
    )


# --- the instance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """One HTTP(S) request's outcome: the status code, or why there was none."""

    status: int | None = None
    error: str = ""
    # The leaf certificate the server presented (DER), for HTTPS.
    certificate: bytes | None = None


def instance(name: str, obj: Mapping[str, Any] | None, reach: Reach | None) -> list[Finding]:
    if obj is None:
        return [
            Finding(
                "Instance",
                "PortalInstance",
                Result.ERROR,
                f"PortalInstance {name} does not exist",
                FIXES["InstanceNotFound"],
            )
        ]
    found = []
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            reason, message = str(cond.get("reason", "")), str(cond.get("message", ""))
            if cond.get("status") == "True":
                found.append(passed("Instance", "PortalInstance", f"{name} is Ready"))
            else:
                found.append(
                    Finding(
                        "Instance",
                        "PortalInstance",
                        Result.ERROR,
                        f"{name}: {reason}: {message}",
                        fix_for(reason, message),
                    )
                )
    url = (obj.get("spec") or {}).get("url", "")
    if reach is None:
        return found
    if reach.status is None:
        found.append(
            Finding(
                "Instance",
                "Reachable",
                Result.WARNING,
                f"{url} did not answer from here ({reach.error})",
                "Check the instance's URL and that it runs; the runtime reaches it from the "
                "cluster, which may see it where this machine does not",
            )
        )
    else:
        found.append(passed("Instance", "Reachable", f"{url} answers (HTTP {reach.status})"))
    return found
