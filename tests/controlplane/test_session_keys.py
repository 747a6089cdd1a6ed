"""The portal's session keys on a real API server: kept beside its instance token in the
Secret `<portal>-instance`, made by the operator and owned by the Portal, rotated by
`portico rotate-session-keys` keeping the previous key, restored when
deleted, never in a log line, an Event, the status or the ConfigMap, and never taken over
when someone else's Secret has its name."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.controlplane import Cluster, Operator, wait_for
from tests.support.portals import portal

PORTICO = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "portico")
ROTATE = "portico.dev/rotate-session-keys"
HANDLED = "lastHandledSessionKeysRotation"


def keys(cluster: Cluster, namespace: str, name: str) -> list[str]:
    secret = cluster.get("secret", f"{name}-instance", namespace) or {}
    raw = (secret.get("data") or {}).get("keys", "")
    return base64.b64decode(raw).decode().splitlines() if raw else []


def rotate(cluster: Cluster, namespace: str, name: str) -> tuple[str, str]:
    out = subprocess.run(
        [
            PORTICO,
            "rotate-session-keys",
            name,
            "-n",
            namespace,
            "--kubeconfig",
            str(cluster.plane.kubeconfig),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(cluster.portal(namespace, name)["metadata"]["annotations"][ROTATE]), out


def handled(cluster: Cluster, namespace: str, name: str, token: str) -> dict[str, Any] | None:
    obj = cluster.portal(namespace, name)
    return obj if (obj.get("status") or {}).get(HANDLED) == token else None


def test_made_owned_rotated_restored_and_never_said(
    cluster: Cluster, namespace: str, instance: str, operator: Operator
) -> None:
    cluster.apply(portal("keys", namespace, instance))
    ready = cluster.wait_phase(namespace, "keys", "Ready")
    secret = cluster.get("secret", "keys-instance", namespace)
    assert secret is not None, "the operator made no instance Secret"
    assert set(secret["data"]) >= {"token", "keys"}, "the token and the keys, in one Secret"
    owner = secret["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Portal" and owner["uid"] == ready["metadata"]["uid"]
    assert owner["controller"] is True
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "portico"
    (first,) = keys(cluster, namespace, "keys")
    assert len(first) >= 32
    deployment = cluster.get("deployment", "keys", namespace) or {}
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert "keys-instance" in [(v.get("secret") or {}).get("secretName") for v in volumes]
    generation = deployment["metadata"]["generation"]

    token, said = rotate(cluster, namespace, "keys")
    assert "rotation requested" in said
    wait_for("the rotation to be handled", lambda: handled(cluster, namespace, "keys", token))
    old, second = keys(cluster, namespace, "keys")
    assert old == first and second != first  # the previous key still verifies sessions
    events = [e for e in cluster.events(namespace, "keys") if e["reason"] == "SessionKeysRotated"]
    assert len(events) == 1 and token in events[0]["message"]
    # The runtime re-reads the mounted file: a rotation rolls no pod.
    after = cluster.get("deployment", "keys", namespace) or {}
    assert after["metadata"]["generation"] == generation

    token2, _ = rotate(cluster, namespace, "keys")
    wait_for("the second rotation", lambda: handled(cluster, namespace, "keys", token2))
    third = keys(cluster, namespace, "keys")
    assert third[0] == second and third[1] not in (first, second) and len(third) == 2

    # Deleted by hand: made again (with a new key), like any other child.
    cluster.plane.kubectl("delete", "secret", "keys-instance", "-n", namespace)
    wait_for("the Secret to be made again", lambda: keys(cluster, namespace, "keys"))
    (fresh,) = keys(cluster, namespace, "keys")
    assert fresh not in (first, second, *third)

    configmap = cluster.get("configmap", "keys-config", namespace) or {}
    everywhere = operator.log_text() + json.dumps(
        [
            cluster.portal(namespace, "keys").get("status"),
            configmap.get("data"),
            cluster.items("events", namespace),
        ]
    )
    for key in (first, second, *third, fresh):
        for form in (key, base64.b64encode(key.encode()).decode()):
            assert form not in everywhere, "a session key was said"


def test_someone_elses_secret_of_that_name_is_left_alone(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    mine = base64.b64encode(b"x" * 40 + b"\n").decode()
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "taken-instance", "namespace": namespace},
            "data": {"keys": mine},
        }
    )
    cluster.apply(portal("taken", namespace, instance))
    failed = cluster.wait_phase(namespace, "taken", "Failed", "ChildConflict")
    assert "Secret taken-instance" in cluster.condition(failed, "Ready")["message"]
    secret = cluster.get("secret", "taken-instance", namespace) or {}
    assert secret["data"]["keys"] == mine and not secret["metadata"].get("ownerReferences")
