"""The control plane itself is real: kwok nodes, controllers, garbage collection, RBAC."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import yaml

from portico_dev import ControlPlane


def _apply(cp: ControlPlane, namespace: str, manifest: Mapping[str, object]) -> None:
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def test_kwok_nodes_are_listed_and_ready(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("get", "nodes", "-l", "type=kwok", "--no-headers").stdout
    rows = [line.split() for line in out.splitlines()]
    assert len(rows) >= 1
    assert all(row[1] == "Ready" for row in rows), out


def test_deployment_becomes_available(control_plane: ControlPlane, namespace: str) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
            },
        },
    }
    _apply(control_plane, namespace, deployment)
    control_plane.kubectl(
        "wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s"
    )
    status = json.loads(
        control_plane.kubectl("get", "-n", namespace, "deployment/web", "-o", "json").stdout
    )["status"]
    assert status["readyReplicas"] == 2
    pods = control_plane.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    assert {p["spec"]["nodeName"].startswith("kwok-node-") for p in json.loads(pods)["items"]} == {
        True
    }


def test_job_becomes_complete(control_plane: ControlPlane, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "once", "image": "example.invalid/once:1"}],
                }
            },
        },
    }
    _apply(control_plane, namespace, job)
    control_plane.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/once", "--timeout=60s"
    )


def test_deleting_an_owner_collects_its_dependents(
    control_plane: ControlPlane, namespace: str
) -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}
    _apply(control_plane, namespace, owner)
    uid = control_plane.kubectl(
        "get", "-n", namespace, "configmap/owner", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
        "data": {"k": "v"},
    }
    _apply(control_plane, namespace, dependent)
    control_plane.kubectl("delete", "-n", namespace, "configmap/owner")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = control_plane.kubectl("get", "-n", namespace, "configmap/dependent", check=False)
        if got.returncode != 0 and "NotFound" in got.stderr:
            return
        time.sleep(0.5)
    raise AssertionError("the garbage collector did not delete the dependent ConfigMap")


def test_serviceaccount_token_is_authenticated_and_rbac_limited(
    control_plane: ControlPlane, namespace: str
) -> None:
    cp = control_plane
    cp.kubectl("create", "role", "read-cm", "-n", namespace, "--verb=get,list", "--resource=cm")
    cp.kubectl(
        "create",
        "rolebinding",
        "read-cm",
        "-n",
        namespace,
        "--role=read-cm",
        f"--serviceaccount={namespace}:reader",
    )
    config = cp.serviceaccount_kubeconfig(namespace, "reader")

    whoami = cp.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig_path=config
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:reader"
    # RBAC may take a moment to see the new binding; the allowed call proves the token works.
    deadline = time.monotonic() + 30
    while cp.kubectl("get", "configmaps", kubeconfig_path=config, check=False).returncode:
        assert time.monotonic() < deadline, "the bound Role never allowed listing ConfigMaps"
        time.sleep(0.5)

    denied = cp.kubectl("get", "secrets", kubeconfig_path=config, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr
    other = cp.kubectl(
        "get", "configmaps", "-n", "kube-system", kubeconfig_path=config, check=False
    )
    assert other.returncode != 0 and "forbidden" in other.stderr.lower()
