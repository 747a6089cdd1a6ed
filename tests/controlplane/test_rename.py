"""Rename on the real API server and controllers: the CEL transition rule, a taken new
subdomain, and the old subdomain held by the renamed portal until its release (the
operator runs with PORTICO_RENAME_GRACE_SECONDS=30, conftest.py)."""

from __future__ import annotations

import json

from tests.support.controlplane import Cluster, wait_for
from tests.support.portals import portal


def _patch(cluster: Cluster, namespace: str, name: str, spec: dict[str, str]) -> object:
    return cluster.plane.kubectl(
        "patch", "portal", name, "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": spec}), check=False,
    )  # fmt: skip


def test_the_subdomain_is_immutable_unless_the_rename_policy_allows_it(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("fixed", namespace, instance))
    refused = _patch(cluster, namespace, "fixed", {"subdomain": f"moved-{namespace}"})
    assert refused.returncode != 0  # type: ignore[attr-defined]
    assert "renamePolicy" in refused.stderr  # type: ignore[attr-defined]
    assert cluster.portal(namespace, "fixed")["spec"]["renamePolicy"] == "Forbid"
    allowed = _patch(
        cluster, namespace, "fixed", {"subdomain": f"moved-{namespace}", "renamePolicy": "Allow"}
    )
    assert allowed.returncode == 0, allowed.stderr  # type: ignore[attr-defined]


def test_a_rename_needs_a_free_subdomain_and_holds_the_old_one_until_its_release(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str
) -> None:
    old, taken, fresh = (f"{w}-{namespace}"[:63].rstrip("-") for w in ("old", "tkn", "new"))
    cluster.apply(portal("holder", other_namespace, instance, subdomain=taken))
    cluster.apply(portal("site", namespace, instance, subdomain=old))
    cluster.wait_phase(namespace, "site", "Ready", timeout=120)
    cluster.wait_phase(other_namespace, "holder", "Ready", timeout=120)

    # Renamed onto a subdomain another portal holds: SubdomainTaken, the old one kept.
    _patch(cluster, namespace, "site", {"subdomain": taken, "renamePolicy": "Allow"})
    obj = cluster.wait_phase(namespace, "site", "Failed", "SubdomainTaken")
    message = cluster.condition(obj, "Ready")["message"]
    assert f"{other_namespace}/holder" in message and old in message
    held = obj["status"]["previousSubdomains"]
    assert [p["subdomain"] for p in held] == [old] and held[0]["releasesAt"]
    cluster.wait_phase(other_namespace, "holder", "Ready")  # the holder keeps its name

    # No one can take the old subdomain meanwhile, not even an older-looking claim.
    cluster.apply(portal("squatter", other_namespace, instance, subdomain=old))
    obj = cluster.wait_phase(other_namespace, "squatter", "Failed", "SubdomainTaken")
    assert f"{namespace}/site" in cluster.condition(obj, "Ready")["message"]

    # Renamed onto a free subdomain: Ready there, its route names the new host only.
    _patch(cluster, namespace, "site", {"subdomain": fresh})
    obj = cluster.wait_phase(namespace, "site", "Ready", timeout=120)
    assert obj["status"]["url"].startswith(f"https://{fresh}.")
    assert [p["subdomain"] for p in obj["status"]["previousSubdomains"]] == [old]
    wait_for(
        "the route to name the new host",
        lambda: (
            [
                r["host"].split(".")[0]
                for r in (cluster.get("ingress", "site", namespace) or {"spec": {"rules": []}})[
                    "spec"
                ]["rules"]
            ]
            == [fresh]
        ),
    )
    assert any(e.get("reason") == "Renamed" for e in cluster.events(namespace, "site"))
    assert cluster.portal(other_namespace, "squatter")["status"]["phase"] == "Failed"

    # At its release time the old subdomain leaves the list and the waiting portal gets it.
    cluster.wait_phase(other_namespace, "squatter", "Ready", timeout=120)
    assert not cluster.portal(namespace, "site")["status"].get("previousSubdomains")
    cluster.wait_phase(namespace, "site", "Ready")
