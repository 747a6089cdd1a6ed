"""Safe among tenants, on the real API server with the stand-in instance on loopback.

Each test performs an attack a tenant (someone who may create Portals and Secrets in
one namespace) could make, and expects it to fail.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from portico_standin.state import InstanceState
from tests.support import controlplane as harness
from tests.support.controlplane import Cluster, wait_for
from tests.support.portals import portal
from tests.support.runtime import TOKEN


def _status(path: str, token: str) -> int:
    request = urllib.request.Request(
        harness.STANDIN_URL + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def _token(cluster: Cluster, namespace: str, name: str) -> tuple[dict[str, str], str]:
    secret = cluster.get("secret", f"{name}-instance", namespace)
    assert secret is not None
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return data, data.get("token", "")


def test_a_tenants_portal_secret_holds_no_instance_key(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str, standin: InstanceState
) -> None:
    cluster.apply(portal("mine", namespace, instance))
    cluster.apply(portal("theirs", other_namespace, instance))
    cluster.wait_phase(namespace, "mine", "Ready", timeout=120)
    cluster.wait_phase(other_namespace, "theirs", "Ready", timeout=120)
    data, token = _token(cluster, namespace, "mine")
    # What the tenant can read: a token minted for this portal, never the instance's own
    # (beside the portal's session keys and the instance's CA).
    assert set(data) <= {"token", "ca.crt", "keys"} and token and token != TOKEN
    assert _status(f"/portico/v1/portals/{namespace}/mine", token) == 200
    # The attack: use this portal's token on another tenant's portal, or instance-wide.
    assert _status(f"/portico/v1/portals/{other_namespace}/theirs", token) == 401
    assert _status(f"/portico/v1/portals/{namespace}/theirs", token) == 401
    minted = urllib.request.Request(
        harness.STANDIN_URL + "/portico/v1/tokens",
        data=json.dumps({"namespace": other_namespace, "portal": "theirs"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        urllib.request.urlopen(minted, timeout=5)
        raise AssertionError("a portal token minted another portal's token")
    except urllib.error.HTTPError as err:
        assert err.code == 401
    # Deleting the portal revokes its token at the instance (no wait for its expiry).
    cluster.plane.kubectl("delete", "portal", "mine", "-n", namespace, "--wait=true")
    wait_for(
        "the deleted portal's token to be revoked",
        lambda: _status(f"/portico/v1/portals/{namespace}/mine", token) == 401,
    )


def test_a_paused_portal_loses_its_credentials_when_its_namespace_is_revoked(
    cluster: Cluster, namespace: str, instance: str, standin: InstanceState
) -> None:
    cluster.apply(portal("sleeper", namespace, instance))
    cluster.wait_phase(namespace, "sleeper", "Ready", timeout=120)
    _, token = _token(cluster, namespace, "sleeper")
    assert _status(f"/portico/v1/portals/{namespace}/sleeper", token) == 200
    cluster.plane.kubectl(
        "patch", "portal", "sleeper", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"paused": True}}),
    )  # fmt: skip
    cluster.wait_phase(namespace, "sleeper", "Paused")
    # The attack: pause first, hoping to keep credentials and routing after revocation.
    revoked = {"from": "Selector", "selector": {"matchLabels": {"never": "matches"}}}
    cluster.plane.kubectl(
        "patch", "portalinstance", instance, "--type=merge",
        "-p", json.dumps({"spec": {"allowedNamespaces": revoked}}),
    )  # fmt: skip
    cluster.wait_phase(namespace, "sleeper", "Failed", "NamespaceNotAllowed")
    for kind, name in (("deployment", "sleeper"), ("ingress", "sleeper")):
        wait_for(
            f"{kind} {name} to be withdrawn",
            lambda k=kind, n=name: cluster.get(k, n, namespace) is None,
        )
    # The portal's Secret keeps its session keys alone: the token is gone from it.
    wait_for(
        "the token to leave sleeper-instance",
        lambda: (
            set((cluster.get("secret", "sleeper-instance", namespace) or {}).get("data") or {})
            == {"keys"}
        ),
    )
    # And the token it held is dead at the instance, not just deleted from the cluster.
    assert _status(f"/portico/v1/portals/{namespace}/sleeper", token) == 401


def test_claims_by_unentitled_portals_do_not_count(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str
) -> None:
    allowed = {"from": "Selector", "selector": {"matchLabels": {"portals": namespace}}}
    cluster.plane.kubectl("label", "namespace", namespace, f"portals={namespace}")
    cluster.plane.kubectl(
        "patch", "portalinstance", instance, "--type=merge",
        "-p", json.dumps({"spec": {"allowedNamespaces": allowed}}),
    )  # fmt: skip
    subdomain = f"shop-{namespace}"[:63].rstrip("-")
    # The attack: file a claim early from a namespace the instance does not allow.
    cluster.apply(portal("squatter", other_namespace, instance, subdomain=subdomain))
    cluster.wait_phase(other_namespace, "squatter", "Failed", "NamespaceNotAllowed")
    cluster.apply(portal("shop", namespace, instance, subdomain=subdomain))
    cluster.wait_phase(namespace, "shop", "Ready", timeout=120)
    ingress = cluster.get("ingress", "shop", namespace)
    assert ingress is not None
    assert ingress["spec"]["rules"][0]["host"].startswith(subdomain + ".")
    # And the squatter gets no routing (no page) on the shared domain.
    assert cluster.get("ingress", "squatter", other_namespace) is None
    assert cluster.get("service", "squatter", other_namespace) is None


def test_delete_and_recreate_keeps_the_host_while_a_contender_waits(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str
) -> None:
    subdomain = f"keep-{namespace}"[:63].rstrip("-")
    cluster.apply(portal("keeper", namespace, instance, subdomain=subdomain))
    cluster.wait_phase(namespace, "keeper", "Ready", timeout=120)
    cluster.apply(portal("rival", other_namespace, instance, subdomain=subdomain))
    cluster.wait_phase(other_namespace, "rival", "Failed", "SubdomainTaken")
    # The attack: the contender filed early, waiting for the owner's GitOps re-creation.
    cluster.plane.kubectl("delete", "portal", "keeper", "-n", namespace, "--wait=true")

    def reserved() -> str | None:
        obj = cluster.portal(other_namespace, "rival")
        message = str(cluster.condition(obj, "Ready").get("message", ""))
        return message if "reserved for that namespace until" in message else None

    message = wait_for("the contender to say until when the name is reserved", reserved)
    assert namespace in message
    assert cluster.get("ingress", "rival", other_namespace) is None
    cluster.apply(portal("keeper", namespace, instance, subdomain=subdomain))
    cluster.wait_phase(namespace, "keeper", "Ready", timeout=120)
    ingress = cluster.get("ingress", "keeper", namespace)
    assert ingress is not None and ingress["spec"]["rules"][0]["host"].startswith(subdomain + ".")
    obj = cluster.wait_phase(other_namespace, "rival", "Failed", "SubdomainTaken")
    assert f"{namespace}/keeper" in cluster.condition(obj, "Ready")["message"]
    assert cluster.get("ingress", "rival", other_namespace) is None
    # Kept where a restarted operator reads it back (the operator's namespace: here
    # `default`, as it runs outside a pod).
    kept = cluster.get("configmap", "portico-reservations", "default")
    assert kept is not None and f"subdomain.{subdomain}" in kept["data"]
