"""A safe, truthful reconcile on the real API server: nothing of theirs touched, nothing left
behind that a portal may no longer have, every failure in status, Ready only when it is true.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from typing import Any

import yaml

from portico.core.children import covers
from tests.support.controlplane import BASE_DOMAIN, PORTICO, Cluster, Operator, wait_for
from tests.support.portals import examples, install_project_service, portal, secret


def _foreign(namespace: str, name: str) -> list[dict[str, Any]]:
    """Someone else's objects that happen to carry the names a Portal `name` would give."""
    meta = {"namespace": namespace, "labels": {"team": "theirs"}}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", **meta},
            "data": {"theirs": "precious"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-instance", **meta},
            "stringData": {"theirs": "precious"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "theirs"}},
                "template": {
                    "metadata": {"labels": {"app": "theirs"}},
                    "spec": {"containers": [{"name": "c", "image": "theirs:1"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, **meta},
            "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, **meta},
            "spec": {
                "rules": [
                    {
                        "host": "theirs.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": name, "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    ]


def _fingerprint(obj: dict[str, Any] | None) -> Any:
    assert obj is not None, "someone else's object is gone"
    meta = obj["metadata"]
    return (
        meta.get("labels"),
        meta.get("ownerReferences"),
        meta.get("annotations"),
        obj.get("data"),
        obj.get("spec"),
    )


def test_someone_elses_objects_are_never_touched(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    theirs = _foreign(namespace, "victim")
    cluster.apply(*theirs)
    kinds = [(d["kind"].lower(), d["metadata"]["name"]) for d in theirs]
    # The deployment controller annotates their Deployment (its revision) once it sees it:
    # that write is theirs, so the fingerprint is taken after it.
    wait_for(
        "the deployment controller to record their Deployment's revision",
        lambda: (
            "deployment.kubernetes.io/revision"
            in (cluster.get("deployment", "victim", namespace) or {})["metadata"].get(
                "annotations", {}
            )
        ),
    )
    before = [_fingerprint(cluster.get(k, n, namespace)) for k, n in kinds]
    cluster.apply(portal("victim", namespace, instance))
    obj = cluster.wait_phase(namespace, "victim", "Failed", "ChildConflict")
    message = cluster.condition(obj, "Ready")["message"]
    assert "victim-config" in message and "rename" in message
    assert "ChildConflict" in [e["reason"] for e in cluster.events(namespace, "victim")]
    assert [_fingerprint(cluster.get(k, n, namespace)) for k, n in kinds] == before
    cluster.plane.kubectl("delete", "portal", "victim", "-n", namespace, "--wait=true")
    # Garbage collection runs after the delete: give it time to (wrongly) take anything.
    job = "victim-provision-1"
    wait_for(
        "the portal's own Job to be collected", lambda: cluster.get("job", job, namespace) is None
    )
    assert [_fingerprint(cluster.get(k, n, namespace)) for k, n in kinds] == before


def test_lost_namespace_permission_withdraws_credentials_and_runtime(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("leaver", namespace, instance))
    cluster.wait_phase(namespace, "leaver", "Ready", timeout=120)
    assert cluster.get("secret", "leaver-instance", namespace) is not None
    patch = {
        "spec": {"allowedNamespaces": {"from": "Selector", "selector": {"matchLabels": {"x": "y"}}}}
    }
    cluster.plane.kubectl(
        "patch", "portalinstance", instance, "--type=merge", "-p", json.dumps(patch)
    )
    cluster.wait_phase(namespace, "leaver", "Failed", "NamespaceNotAllowed")
    wait_for(
        "deployment leaver to be withdrawn",
        lambda: cluster.get("deployment", "leaver", namespace) is None,
    )
    # Its Secret keeps the session keys alone (sessions outlive the lapse); the token goes.
    wait_for(
        "the token to leave leaver-instance",
        lambda: (
            set((cluster.get("secret", "leaver-instance", namespace) or {}).get("data") or {})
            == {"keys"}
        ),
    )
    # A portal its instance does not allow holds no name: no routing, and the page server
    # shows nothing of it (its Ready reason is an unentitled one).
    for kind in ("service", "ingress"):
        wait_for(
            f"{kind} leaver to be withdrawn",
            lambda k=kind: cluster.get(k, "leaver", namespace) is None,
        )
    assert "Withdrawn" in [e["reason"] for e in cluster.events(namespace, "leaver")]
    cluster.plane.kubectl("label", "namespace", namespace, "x=y")
    cluster.wait_phase(namespace, "leaver", "Ready", timeout=120)
    assert cluster.get("secret", "leaver-instance", namespace) is not None


def test_image_not_allowed_gets_no_credentials(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(
        portal("imagery", namespace, instance, runtime={"image": "evil.example.com/miner:1"})
    )
    obj = cluster.wait_phase(namespace, "imagery", "Failed", "ImageNotAllowed")
    assert "evil.example.com/miner:1" in cluster.condition(obj, "Ready")["message"]
    assert cluster.get("secret", "imagery-instance", namespace) is None
    assert cluster.get("deployment", "imagery", namespace) is None
    patch = {"spec": {"allowedImages": ["evil.example.com/*"]}}
    cluster.plane.kubectl(
        "patch", "portalinstance", instance, "--type=merge", "-p", json.dumps(patch)
    )
    cluster.wait_phase(namespace, "imagery", "Ready", timeout=120)


def test_a_failing_write_is_in_status_not_only_the_log(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    """A quota the API server enforces: its own words reach Synced, PHASE is never empty."""
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-configmaps", "namespace": namespace},
            "spec": {"hard": {"count/configmaps": "0"}},
        }
    )
    wait_for(
        "the quota to be counted",
        lambda: (cluster.get("resourcequota", "no-configmaps", namespace) or {}).get("status"),
    )
    cluster.apply(portal("quota", namespace, instance))
    obj = cluster.wait_phase(namespace, "quota", "Failed", "ReconcileError")
    synced = cluster.condition(obj, "Synced")
    assert synced["status"] == "False" and "exceeded quota" in synced["message"], synced
    assert "Traceback" not in json.dumps(obj["status"])
    row = cluster.plane.kubectl("get", "portal", "quota", "-n", namespace, "--no-headers").stdout
    assert "Failed" in row
    cluster.plane.kubectl("delete", "resourcequota", "no-configmaps", "-n", namespace)
    obj = cluster.wait_phase(namespace, "quota", "Ready", timeout=120)
    assert cluster.condition(obj, "Synced")["reason"] == "ReconcileSuccess"


def test_ready_after_a_spec_edit_means_the_new_pods_are_available(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("roll", namespace, instance, runtime={"replicas": 1}))
    cluster.wait_phase(namespace, "roll", "Ready", timeout=120)
    doc = portal("roll", namespace, instance, runtime={"replicas": 1}, displayName="Rolled")
    cluster.apply(doc)
    cluster.plane.kubectl(
        "wait", "portal/roll", "-n", namespace, "--for=condition=Ready", "--timeout=120s"
    )
    obj = cluster.portal(namespace, "roll")
    deployment = cluster.get("deployment", "roll", namespace)
    assert deployment is not None
    status = deployment["status"]
    # kubectl wait returned: the Deployment the operator wrote for the edit is rolled out.
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert status["observedGeneration"] >= deployment["metadata"]["generation"]
    assert status.get("updatedReplicas") == status.get("availableReplicas") == 1
    config = cluster.get("configmap", "roll-config", namespace)
    assert config is not None and "Rolled" in config["data"]["portal.json"]


def test_plan_is_what_the_operator_applies(
    cluster: Cluster, operator: Operator, namespace: str, instance: str
) -> None:
    """Each example's live children hold every field `portico plan` renders for them, when
    `plan` is given the operator's own settings."""
    install_project_service(cluster, instance)
    cluster.apply(
        secret("contoso-insights", namespace, sharedKey="k1"),
        secret("contoso-oidc", namespace, clientSecret="s1"),
    )
    inst = cluster.get("portalinstance", instance)
    assert inst is not None
    portals = examples(namespace, instance)
    names = [doc["metadata"]["name"] for doc in portals]
    cluster.apply(*portals)
    docs = [copy.deepcopy(inst), *portals]
    planned = subprocess.run(
        [PORTICO, "plan", "-", "--base-domain", BASE_DOMAIN, "-o", "json"],
        input=yaml.safe_dump_all(docs),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **operator.env},
    )
    children = json.loads(planned.stdout)
    for name in names:
        cluster.wait_phase(namespace, name, "Ready", timeout=180)
    compared = 0
    for child in children:
        kind, child_name = child["kind"], child["metadata"]["name"]
        live = cluster.get(kind.lower(), child_name, namespace)
        if kind == "Job" and live is None:
            continue  # a finished Job may be gone; its name was still checked below
        assert live is not None, f"plan renders {kind} {child_name} but the operator did not"
        if kind == "Secret":
            child = {**child, "data": None}
            live = {**live, "data": None}  # values come from the cluster (plan says so)
        owner = child["metadata"].pop("ownerReferences")[0]  # offline: no UID yet
        live_owner = live["metadata"]["ownerReferences"][0]
        assert (live_owner["kind"], live_owner["name"], live_owner["controller"]) == (
            owner["kind"],
            owner["name"],
            True,
        )
        if kind == "Deployment":  # the mounted Secrets' versions (plan notes it)
            for obj in (child, live):
                obj["spec"]["template"]["metadata"].get("annotations", {}).pop(
                    "portico.dev/secrets-checksum", None
                )
        assert covers(live, child), f"{kind} {child_name} differs from plan"
        compared += 1
    assert compared >= 5 * len(names)
