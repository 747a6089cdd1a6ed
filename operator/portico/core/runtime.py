"""Is the runtime serving what was last applied? (pure; the rule `kubectl rollout status` uses)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portico.core.conditions import Condition, false, true


def runtime_condition(deployment: Mapping[str, Any] | None, rolling: bool) -> Condition:
    """RuntimeAvailable: true only once the Deployment's newest pods are all available.

    ROLLING means this reconcile is writing a new Deployment spec: whatever the
    object says now describes the old one.
    """
    if rolling:
        return false("RuntimeAvailable", "RollingOut", "a new runtime configuration is rolling out")
    if deployment is None:
        return false("RuntimeAvailable", "Deploying", "the runtime Deployment is starting")
    status = deployment.get("status") or {}
    generation = int(deployment.get("metadata", {}).get("generation", 0))
    if int(status.get("observedGeneration", 0)) < generation:
        return false(
            "RuntimeAvailable",
            "RollingOut",
            "the Deployment controller has not seen the new spec yet",
        )
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return false("RuntimeAvailable", "ProgressDeadlineExceeded", cond.get("message", ""))
    want = int((deployment.get("spec") or {}).get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < want:
        return false("RuntimeAvailable", "RollingOut", f"{updated} of {want} replicas updated")
    if total > updated:
        return false(
            "RuntimeAvailable", "RollingOut", f"{total - updated} old replica(s) still running"
        )
    if available < updated:
        return false(
            "RuntimeAvailable",
            "Unavailable",
            f"{available} of {updated} updated replica(s) available",
        )
    return true("RuntimeAvailable", "Available", f"{available} replica(s) available")
