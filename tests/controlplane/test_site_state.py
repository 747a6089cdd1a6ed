"""spec.state and portico.dev/restart-site on the real API server and controllers (kwok
nodes), with the stand-in instance minting and revoking the portals' tokens."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request

from tests.support import controlplane as harness
from tests.support.controlplane import PORTICO, Cluster, wait_for
from tests.support.portals import portal


def _token(cluster: Cluster, namespace: str, name: str) -> str:
    secret = cluster.get("secret", f"{name}-instance", namespace)
    assert secret is not None
    return base64.b64decode((secret.get("data") or {})["token"]).decode()


def _answers(namespace: str, name: str, token: str) -> int:
    request = urllib.request.Request(
        f"{harness.STANDIN_URL}/portico/v1/portals/{namespace}/{name}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def _state(cluster: Cluster, namespace: str, name: str, state: str) -> None:
    cluster.plane.kubectl(
        "patch", "portal", name, "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"state": state}}),
    )  # fmt: skip


def test_stopped_scales_to_zero_keeps_the_rest_and_running_brings_it_back(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("shop", namespace, instance))
    before = cluster.wait_phase(namespace, "shop", "Ready", timeout=120)
    token = _token(cluster, namespace, "shop")
    _state(cluster, namespace, "shop", "Stopped")
    # What a person types: kubectl wait on the phase.
    cluster.plane.kubectl(
        "wait", "portal/shop", "-n", namespace,
        "--for=jsonpath={.status.phase}=Stopped", "--timeout=60s",
    )  # fmt: skip
    obj = cluster.wait_phase(namespace, "shop", "Stopped", "Stopped")
    deployment = cluster.get("deployment", "shop", namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 0
    wait_for("the route to go", lambda: cluster.get("ingress", "shop", namespace) is None)
    # Everything else stays: the Service, the configuration, the token (still valid).
    assert cluster.get("service", "shop", namespace) is not None
    assert cluster.get("configmap", "shop-config", namespace) is not None
    assert _answers(namespace, "shop", token) == 200
    # Stopping is not a provisioning attempt.
    assert obj["status"]["provisioning"]["attempt"] == before["status"]["provisioning"]["attempt"]
    columns = cluster.plane.kubectl("get", "portal", "shop", "-n", namespace, "-o", "wide")
    assert "Stopped" in columns.stdout
    assert any(e.get("reason") == "Stopped" for e in cluster.events(namespace, "shop"))
    _state(cluster, namespace, "shop", "Running")
    cluster.wait_phase(namespace, "shop", "Ready", timeout=120)
    deployment = cluster.get("deployment", "shop", namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    assert cluster.get("ingress", "shop", namespace) is not None


def test_deprovisioned_releases_host_and_token_and_reactivation_needs_a_free_subdomain(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str
) -> None:
    subdomain = f"host-{namespace}"[:63].rstrip("-")
    cluster.apply(portal("old", namespace, instance, subdomain=subdomain))
    cluster.wait_phase(namespace, "old", "Ready", timeout=120)
    token = _token(cluster, namespace, "old")
    cluster.apply(portal("new", other_namespace, instance, subdomain=subdomain))
    cluster.wait_phase(other_namespace, "new", "Failed", "SubdomainTaken")

    _state(cluster, namespace, "old", "Deprovisioned")
    obj = cluster.wait_phase(namespace, "old", "Deprovisioned", "Deprovisioned")
    assert obj["status"].get("releasedAt") and obj["status"].get("provisioning")
    for kind, name in (
        ("deployment", "old"),
        ("service", "old"),
        ("ingress", "old"),
        ("secret", "old-instance"),
    ):
        wait_for(
            f"{kind} {name} to go", lambda k=kind, n=name: cluster.get(k, n, namespace) is None
        )
    assert cluster.get("configmap", "old-config", namespace) is not None
    # Credentials withdrawn at the instance, not only deleted from the cluster.
    wait_for("the token to be revoked", lambda: _answers(namespace, "old", token) == 401)
    # The claim is released: the waiting portal takes the subdomain.
    cluster.wait_phase(other_namespace, "new", "Ready", timeout=120)

    # Running again while another portal holds it: SubdomainTaken, saying how to fix it.
    _state(cluster, namespace, "old", "Running")
    obj = cluster.wait_phase(namespace, "old", "Failed", "SubdomainTaken")
    message = cluster.condition(obj, "Ready")["message"]
    assert f"{other_namespace}/new" in message and "Deprovisioned" in message
    assert cluster.get("deployment", "old", namespace) is None
    assert cluster.wait_phase(other_namespace, "new", "Ready")  # the newer holder keeps it

    # Once it is free again (the holder deprovisioned), the old portal reactivates.
    _state(cluster, other_namespace, "new", "Deprovisioned")
    obj = cluster.wait_phase(namespace, "old", "Ready", timeout=120)
    assert obj["status"].get("reclaimedAt") and not obj["status"].get("releasedAt")
    ingress = cluster.get("ingress", "old", namespace)
    assert ingress is not None and ingress["spec"]["rules"][0]["host"].startswith(subdomain + ".")
    assert _answers(namespace, "old", _token(cluster, namespace, "old")) == 200


def test_restart_site_rolls_the_pods_and_is_echoed_once_they_serve(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("roll", namespace, instance))
    before = cluster.wait_phase(namespace, "roll", "Ready", timeout=120)
    kubeconfig = str(cluster.plane.kubeconfig)
    done = subprocess.run(
        [PORTICO, "restart", "roll", "-n", namespace, "--site", "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=True,
    )
    token = done.stdout.split("portico.dev/restart-site=")[1].split(")")[0]

    def echoed() -> dict | None:
        obj = cluster.portal(namespace, "roll")
        status = obj.get("status") or {}
        ok = status.get("lastHandledSiteRestart") == token and status.get("phase") == "Ready"
        return obj if ok else None

    obj = wait_for("the site restart to be echoed", echoed, 120)
    deployment = cluster.get("deployment", "roll", namespace)
    assert deployment is not None
    pod = deployment["spec"]["template"]["metadata"]["annotations"]
    assert pod["portico.dev/restart-site"] == token
    # The pods rolled; provisioning did not run again.
    assert obj["status"]["provisioning"] == before["status"]["provisioning"]
