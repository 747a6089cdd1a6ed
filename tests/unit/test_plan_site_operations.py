"""`portico plan` on the site-operations examples agrees with the operator's decide():
a Stopped portal's runtime at zero and no route, a Deprovisioned one keeps only its
configuration, a portal in maintenance runs with no route of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.plan import plan

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = str(ROOT / "examples" / "contoso-instance.yaml")
OPS = ROOT / "examples" / "site-operations"


def _children(example: str) -> dict[tuple[str, str], dict[str, Any]]:
    result = plan(INSTANCE, str(OPS / example))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_a_stopped_portal_plans_its_runtime_at_zero_and_no_route() -> None:
    children = _children("stopped.yaml")
    assert children[("Deployment", "winter-campaign")]["spec"]["replicas"] == 0
    assert ("Ingress", "winter-campaign") not in children
    assert ("Secret", "winter-campaign-instance") in children  # its token is kept


def test_a_deprovisioned_portal_plans_only_its_configuration() -> None:
    assert set(_children("deprovisioned.yaml")) == {("ConfigMap", "summer-campaign-config")}


def test_a_portal_in_maintenance_plans_its_runtime_without_a_route() -> None:
    children = _children("maintenance.yaml")
    assert children[("Deployment", "support-maintenance")]["spec"]["replicas"] >= 1
    assert ("Ingress", "support-maintenance") not in children


def test_a_renamed_portal_plans_its_new_host() -> None:
    children = _children("rename.yaml")
    config = children[("ConfigMap", "contoso-support-config")]["data"]["portal.json"]
    assert '"url": "https://contoso-help.portals.example.com"' in config


def _allow_list(*args: str) -> dict[tuple[str, str], dict[str, Any]]:
    result = plan(*args, INSTANCE, str(OPS / "allow-list.yaml"))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_an_allow_list_plans_what_each_ingress_controller_needs() -> None:
    traefik = _allow_list("--ingress-controller", "traefik")
    middleware = traefik[("Middleware", "partners-office-allowlist")]
    assert middleware["spec"]["ipAllowList"]["sourceRange"] == [
        "203.0.113.0/24",
        "198.51.100.7/32",
        "2001:db8:1200::/40",
    ]
    annotations = traefik[("Ingress", "partners-office")]["metadata"]["annotations"]
    assert (
        "support-partners-office-allowlist@kubernetescrd"
        in (annotations["traefik.ingress.kubernetes.io/router.middlewares"])
    )
    nginx = _allow_list("--ingress-controller", "ingress-nginx")
    assert not [k for k in nginx if k[0] == "Middleware"]
    annotations = nginx[("Ingress", "partners-office")]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/allowlist-source-range"].startswith(
        "203.0.113.0/24,"
    )
    other = _allow_list("--ingress-controller", "other")
    assert "annotations" not in other[("Ingress", "partners-office")]["metadata"] or not any(
        "source-range" in k or "middlewares" in k
        for k in other[("Ingress", "partners-office")]["metadata"]["annotations"]
    )


def test_plan_refuses_a_range_with_host_bits() -> None:
    text = (OPS / "allow-list.yaml").read_text().replace("203.0.113.0/24", "203.0.113.9/24")
    result = plan(INSTANCE, "-", stdin=text)
    assert result.returncode == 1
    assert "spec.access.allowedSourceRanges[0]" in result.stderr
