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
