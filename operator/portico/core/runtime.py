"""Is the runtime serving what was last applied? (pure; the rule `kubectl rollout status` uses)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portico.core import names
from portico.core.conditions import Condition, false, true
from portico.core.observed import Endpoint


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


def await_routing(
    phase: str,
    conditions: Sequence[Condition],
    desired: Sequence[Mapping[str, Any]],
    endpoints: Sequence[Endpoint] | None,
    portal: str,
) -> Condition | None:
    """RuntimeAvailable for a portal Ready but for its Service, until the Service routes to
    the rolled-out pods alone; None when there is nothing to wait for."""
    runtime = next((c for c in conditions if c.type == "RuntimeAvailable"), None)
    if phase != "Ready" or runtime is None or runtime.status != "True":
        return None
    key = ("Deployment", names.runtime_name(portal))
    manifest = next(m for m in desired if (m["kind"], m["metadata"]["name"]) == key)
    return routed(endpoints, int(manifest["spec"].get("replicas", 1)))


def routed(endpoints: Sequence[Endpoint] | None, want: int) -> Condition | None:
    """None when the Service routes to the runtime's current pods alone, else why not yet.

    The Deployment counts a pod as gone once it is terminating, while the Service
    still lists it (and an ingress may still send it requests) until it has stopped.
    Ready waits for it, so what answers after Ready is the new pods.
    """
    if endpoints is None:
        return false(
            "RuntimeAvailable", "RollingOut", "waiting for the Service to list the runtime's pods"
        )
    leaving = len({e.pod for e in endpoints if e.terminating or not e.ready})
    if leaving:
        return false(
            "RuntimeAvailable",
            "RollingOut",
            f"{leaving} old or unready pod(s) still listed by the Service",
        )
    pods = len({e.pod for e in endpoints})  # a dual-stack Service lists each pod twice
    if pods < want:
        return false(
            "RuntimeAvailable", "RollingOut", f"the Service routes to {pods} of {want} pod(s)"
        )
    return None
