"""Conditions and phase from what was observed (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portico.core.reasons import is_failure

# The order in which a not-ready portal explains itself.
ORDER = (
    "InstanceLinked",
    "SolutionsInstalled",
    "RuntimeAvailable",
    "DomainVerified",
    "CertificateReady",
    "TranslationsImported",
    "AnalyticsConfigured",
)


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True", "False" or "Unknown"
    reason: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "True"


def true(type_: str, reason: str, message: str = "") -> Condition:
    return Condition(type_, "True", reason, message)


def false(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, "False", reason, message)


def summarize(
    conditions: Iterable[Condition],
    *,
    paused: bool = False,
    expired: bool = False,
    blocker: Condition | None = None,
) -> tuple[str, Condition]:
    """The phase and the Ready condition.

    BLOCKER is a problem that belongs to no aspect condition (a taken
    subdomain): it explains Ready by itself.
    """
    if paused:
        return "Paused", false("Ready", "Paused", "spec.paused is true; Portico changes nothing")
    if expired:
        return "Expired", false(
            "Ready", "Expired", "the trial has expired; set spec.type to Production to reactivate"
        )
    by_type = {c.type: c for c in conditions}
    failing = [by_type[t] for t in ORDER if t in by_type and not by_type[t].ok]
    if blocker:
        failing.insert(0, blocker)
    if not failing:
        return "Ready", true("Ready", "Ready", "the portal is provisioned and serving")
    first = next((c for c in failing if is_failure(c.reason)), failing[0])
    phase = "Failed" if is_failure(first.reason) else "Configuring"
    return phase, false("Ready", first.reason, first.message)


def to_status(
    conditions: Iterable[Condition],
    previous: Iterable[dict[str, Any]],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """API-convention dicts; lastTransitionTime moves only when the status does."""
    before = {c.get("type"): c for c in previous}
    out = []
    for c in conditions:
        old = before.get(c.type, {})
        changed = old.get("status") != c.status
        out.append(
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "observedGeneration": generation,
                "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),
            }
        )
    return out


def reason_of(status: Any, type_: str) -> str:
    """The reason of one condition in a status dict; empty when it has none."""
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return str(c.get("reason", ""))
    return ""
