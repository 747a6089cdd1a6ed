"""Permissions revoked and restored at run time, on a control plane of this module's own.

The operator's account may write Ingresses only through a RoleBinding per namespace.
Deleting the one in namespace A takes that permission away while the operator runs:
a portal created in A then cannot get its Ingress; portals in B keep working.
Restoring the RoleBinding heals A without a restart of the operator.

The scenario runs once (a module fixture); the tests read what it saw.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from portico_dev import ControlPlane
from tests.support import reliability as rel
from tests.support.controlplane import Cluster, new_namespace, wait_for

ACCOUNT = "portico-rbac"
# Everything the operator needs except writing Ingresses (granted per namespace below).
BASE_RULES = [
    {
        "apiGroups": [
            "",
            "apps",
            "batch",
            "portico.dev",
            "apiextensions.k8s.io",
            "coordination.k8s.io",
            "events.k8s.io",
        ],
        "resources": ["*"],
        "verbs": ["*"],
    },
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["ingresses"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["list", "watch"],
    },
]
INGRESS_WRITER = [
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["ingresses"],
        "verbs": ["create", "patch", "update", "delete"],
    }
]
# What the API server says when the write is refused; the condition must carry it.
FORBIDDEN = re.compile(r'cannot (patch|create) resource "ingresses"')


def rbac(namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        meta = {"name": name}
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": rules,
        }

    docs = [role(f"{ACCOUNT}-base", BASE_RULES), role(f"{ACCOUNT}-ingress-writer", INGRESS_WRITER)]
    docs += [ingress_binding(ns) for ns in namespaces]
    return docs


def ingress_binding(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{ACCOUNT}-ingresses", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": f"{ACCOUNT}-ingress-writer",
        },
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": rel.SYSTEM}],
    }


@dataclass
class Seen:
    namespaces: tuple[str, str]
    denied_status: dict[str, Any]  # the new portal in A while it could not write its Ingress
    denied_writes: list[rel.Write]  # the refused Ingress writes, from the audit log
    same_process: bool
    log: str


def can(plane: ControlPlane, verb: str, namespace: str) -> bool:
    result = plane.kubectl(
        "auth",
        "can-i",
        verb,
        "ingresses.networking.k8s.io",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{rel.SYSTEM}:{ACCOUNT}",
        check=False,
    )
    return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def seen(
    own_control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seen]:
    plane, cluster = own_control_plane, Cluster(own_control_plane)
    a, b = (new_namespace(plane, f"perm-{x}") for x in "ab")
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac((a, b))))
    op = rel.operator(plane, tmp_path_factory.mktemp("perm"), ACCOUNT, role=f"{ACCOUNT}-base")
    op.start()
    try:
        assert op.proc is not None
        pid = op.proc.pid
        instance = rel.new_instance(cluster)
        cluster.apply(rel.portal("a1", a, instance), rel.portal("b1", b, instance))
        cluster.wait_phase(a, "a1", "Ready", timeout=120)
        cluster.wait_phase(b, "b1", "Ready", timeout=120)

        revoked = time.time()
        plane.kubectl("delete", "rolebinding", f"{ACCOUNT}-ingresses", "-n", a)
        wait_for("the revocation to take effect", lambda: not can(plane, "patch", a), timeout=30)
        cluster.apply(rel.portal("a2", a, instance), rel.portal("b2", b, instance))
        # The rest keeps working: a new portal in B becomes Ready meanwhile.
        cluster.wait_phase(b, "b2", "Ready", timeout=120)

        def refused() -> list[rel.Write]:
            done = rel.writes(plane, {rel.user(ACCOUNT)}, since=revoked)
            return [w for w in done if w.resource == "ingresses" and w.code == 403]

        denied = wait_for("a refused Ingress write in A", refused, timeout=60)

        def reported() -> dict[str, Any] | None:
            """a2's status once the failed reconcile has written what it has to say."""
            status = cluster.portal(a, "a2").get("status") or {}
            synced = [c for c in status.get("conditions") or () if c["type"] == "Synced"]
            return status if synced and synced[0].get("status") == "False" else None

        status = wait_for("a2's status to report the refusal", reported, timeout=60)
        assert cluster.condition(cluster.portal(a, "a1"), "Ready").get("status") == "True"

        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(ingress_binding(a)))
        cluster.wait_phase(a, "a2", "Ready", timeout=180)
        yield Seen(
            (a, b), status, denied, op.proc.poll() is None and op.proc.pid == pid, op.log_text()
        )
    finally:
        op.stop()


def test_revoked_permission_blocks_only_its_namespace_and_heals_without_restart(seen: Seen) -> None:
    a, _ = seen.namespaces
    assert seen.denied_writes and all(w.namespace == a for w in seen.denied_writes)
    assert {w.name for w in seen.denied_writes} == {"a2"}
    assert seen.denied_status.get("phase") != "Ready"
    assert seen.same_process  # healed by the same operator process: no restart
    assert "instance-token" not in seen.log


def test_the_affected_portal_says_which_permission_is_missing(seen: Seen) -> None:
    """Expected shape: condition Synced=False, reason ReconcileError, and a message that
    quotes the API server's refusal (verb and resource), e.g.
    'ingresses.networking.k8s.io "a2" is forbidden: User "..." cannot patch resource
    "ingresses" in API group "networking.k8s.io" in the namespace "..."'."""
    synced = next(
        (c for c in seen.denied_status.get("conditions") or () if c["type"] == "Synced"), {}
    )
    assert synced.get("status") == "False", seen.denied_status
    assert synced.get("reason") == "ReconcileError"
    assert FORBIDDEN.search(synced.get("message", "")), synced
