"""Writes, counted by the API server's own audit log: a Ready portal costs nothing to keep."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

from tests.support.controlplane import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Cluster,
    Operator,
    wait_for,
)
from tests.support.portals import portal

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"


def operator_writes(cluster: Cluster, namespace: str, since: str) -> list[dict[str, Any]]:
    """Writes the operator made to objects in NAMESPACE since the RFC 3339 time SINCE."""
    out = []
    for line in cluster.plane.audit_log.read_text().splitlines():
        entry = json.loads(line)
        ref = entry.get("objectRef") or {}
        if (
            entry.get("stage") == "ResponseComplete"
            and entry["user"]["username"] == OPERATOR_USER
            and ref.get("namespace") == namespace
            and entry["requestReceivedTimestamp"] >= since
        ):
            out.append(entry)
    return out


def describe(writes: list[dict[str, Any]]) -> dict[str, int]:
    return dict(
        Counter(
            f"{w['verb']} {w['objectRef']['resource']}"
            + (f"/{w['objectRef']['subresource']}" if w["objectRef"].get("subresource") else "")
            for w in writes
        )
    )


def samples(text: str, name: str) -> dict[str, float]:
    """The samples of metric NAME in a Prometheus text page: labels → value."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key[len(name) :]] = float(value)
    return out


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def test_twenty_ready_portals_cost_zero_writes_across_a_restart(
    cluster: Cluster, namespace: str, instance: str, operator: Operator
) -> None:
    start = now()
    names = [f"idle-{i:02d}" for i in range(20)]
    cluster.apply(*(portal(n, namespace, instance) for n in names))
    for name in names:
        cluster.wait_phase(namespace, name, "Ready", timeout=180)
    # The Ready Event is the last write of a reconcile that reaches Ready (after its status).
    wait_for(
        "every portal's Ready event",
        lambda: all(
            any(e.get("reason") == "Ready" for e in cluster.events(namespace, n)) for n in names
        ),
        timeout=60,
    )
    # The portal NetworkPolicy is on for this operator: one per portal, selecting its pods,
    # and counted in the writes below like every other child.
    policies = cluster.items("networkpolicies", namespace, "portico.dev/portal=idle-00")
    assert [p["spec"]["podSelector"] for p in policies] == [
        {"matchLabels": {"portico.dev/portal": "idle-00"}}
    ]
    created = operator_writes(cluster, namespace, start)
    per_portal = len(created) / len(names)
    print(f"\nwrites per new portal: {per_portal:.1f} ({describe(created)})")
    # The write budget of a new portal without a custom domain: its 7 children (the
    # instance Secret with its token and session keys, ConfigMap, NetworkPolicy, Deployment,
    # Service, provisioning Job, and the Ingress at Ready), 2 status patches (the first
    # one, Ready) and 1 Event (Ready: the apply is when provisioning started). The shared
    # page server costs none.
    assert per_portal <= 10, describe(created)

    operator.stop()
    restarted = now()
    operator.start()

    # Startup lists everything and checks every portal, then at least one full resync
    # checks every portal again: two reconciles per portal the operator knows, counted by
    # the new process's own metrics.
    def resynced() -> bool:
        try:
            text = operator.metrics()
        except OSError:  # not listening yet
            return False
        known = sum(samples(text, "portico_portals").values())
        done = samples(text, "portico_reconcile_duration_seconds_count").get("", 0.0)
        return known >= len(names) and done >= 2 * known

    resync = float(operator.env.get("PORTICO_RESYNC_SECONDS", "10"))
    wait_for("a full resync after the restart", resynced, timeout=3 * resync + 60)
    idle = operator_writes(cluster, namespace, restarted)
    print(f"writes across restart and idle resync: {len(idle)} {describe(idle)}")
    assert idle == [], describe(idle)
    assert "portico_api_writes_skipped_total" in operator.metrics()
    # The resync passed over every portal and decided none again: nothing they read moved.
    unchanged = re.search(r"^portico_reconciles_unchanged_total (\S+)$", operator.metrics(), re.M)
    assert unchanged and float(unchanged.group(1)) >= len(names), operator.metrics()[-2000:]


def test_a_spec_edit_costs_at_most_three_writes_beyond_the_children_it_changes(
    cluster: Cluster, namespace: str, instance: str, operator: Operator
) -> None:
    names = [f"edit-{i}" for i in range(5)]
    cluster.apply(*(portal(n, namespace, instance) for n in names))
    for name in names:
        cluster.wait_phase(namespace, name, "Ready", timeout=180)
    time.sleep(3)
    start = now()
    for name in names:
        doc = portal(name, namespace, instance)
        doc["spec"]["displayName"] = f"{name} renamed"
        cluster.apply(doc)
    for name in names:  # Ready for the new generation
        cluster.wait_phase(namespace, name, "Ready", timeout=180)
    time.sleep(3)
    writes = operator_writes(cluster, namespace, start)
    # A new display name changes the runtime configuration: the ConfigMap and the
    # Deployment (its checksum rolls the pods), and a new generation is a new provisioning
    # attempt (its Job made, the finished one's deleted). Then status and Events: the
    # new generation's Configuring, Ready again, and Ready's Event.
    changed = ("configmaps", "deployments", "jobs")
    children = [w for w in writes if w["objectRef"]["resource"] in changed]
    rest = [w for w in writes if w not in children]
    print(
        f"\nper spec edit: {len(children) / len(names):.1f} children, "
        f"{len(rest) / len(names):.1f} other writes ({describe(writes)})"
    )
    assert len(children) == 4 * len(names), describe(writes)
    assert len(rest) <= 3 * len(names), describe(writes)
