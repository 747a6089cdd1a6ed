"""The chart's Argo CD health checks, run with Lua 5.1 over Portal and PortalInstance status
objects (the statuses docs/user-guide.md describes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.argocd import HEALTH_DIR, SCRIPTS, health

REPO = Path(__file__).resolve().parents[2]
NOW = "2025-01-01T00:00:00Z"


def condition(
    type_: str, status: str, reason: str = "", message: str = "", generation: int = 3
) -> dict[str, Any]:
    cond = {
        "type": type_,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": NOW,
    }
    # The operator may leave reason or message out; the scripts must cope.
    cond.update({k: v for k, v in (("reason", reason), ("message", message)) if v})
    return cond


def portal(
    phase: str | None = None,
    *conditions: dict[str, Any],
    generation: int = 3,
    observed: int | None = 3,
    paused: bool = False,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": "contoso-support", "namespace": "support", "generation": generation},
        "spec": {"subdomain": "contoso-support", "paused": paused},
    }
    if phase is not None or conditions or observed is not None:
        obj["status"] = {"url": "https://contoso-support.portals.example.com"}
        if phase is not None:
            obj["status"]["phase"] = phase
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
        if conditions:
            obj["status"]["conditions"] = list(conditions)
    return obj


def instance(*conditions: dict[str, Any], generation: int = 1, observed: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "PortalInstance",
        "metadata": {"name": "contoso-crm", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "portalCount": 2,
            "conditions": list(conditions),
        },
    }


READY = condition("Ready", "True", "Ready", "The portal is serving")


@pytest.mark.parametrize(
    ("obj", "status", "message"),
    [
        (portal(observed=None), "Progressing", "Waiting for Portico"),
        ({"kind": "Portal", "metadata": {"generation": 1}}, "Progressing", "Waiting for Portico"),
        (portal("Configuring", READY, observed=2), "Progressing", "generation 3"),
        (portal("Configuring"), "Progressing", "Waiting for Portico"),
        (
            portal("Configuring", condition("Ready", "Unknown", "Provisioning", "Job running")),
            "Progressing",
            "Job running",
        ),
        # The status was written for this generation, the Ready condition for an older one.
        (portal("Ready", {**READY, "observedGeneration": 2}), "Progressing", ""),
        (portal("Ready", READY), "Healthy", "https://contoso-support.portals.example.com"),
        (
            portal(
                "Configuring",
                condition("Ready", "False", "CNAMEMissing", "Please add a CNAME record"),
                condition("DomainVerified", "False", "CNAMEMissing", "Please add a CNAME record"),
            ),
            "Progressing",
            "CNAMEMissing: Please add a CNAME record",
        ),
        (
            portal("Failed", condition("Ready", "False", "InvalidCertificate", "wrong password")),
            "Degraded",
            "InvalidCertificate: wrong password",
        ),
        (
            portal("Expired", condition("Ready", "False", "Expired", "the trial ended")),
            "Degraded",
            "Expired: the trial ended",
        ),
        (portal("Failed", condition("Ready", "False")), "Degraded", "Failed"),
        (portal("Paused", READY, paused=True), "Suspended", "paused"),
        # Paused before the operator saw the newest generation: still Suspended.
        (portal("Paused", READY, observed=2, paused=True), "Suspended", "paused"),
        # Unpaused, not yet observed: no longer Suspended.
        (portal("Paused", READY, observed=2, paused=False), "Progressing", "generation 3"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_portal_health(obj: dict[str, Any], status: str, message: str) -> None:
    result = health(obj)
    assert result["status"] == status
    assert message in result["message"]


@pytest.mark.parametrize(
    ("obj", "status", "message"),
    [
        (instance(), "Progressing", "Waiting for Portico"),
        (instance(condition("Ready", "True", "Linked", "", 1)), "Healthy", "Linked"),
        (
            instance(condition("Ready", "False", "SecretNotFound", "no Secret", 1)),
            "Degraded",
            "SecretNotFound: no Secret",
        ),
        (instance(condition("Ready", "True", "Linked", "", 1), generation=2), "Progressing", "2"),
        (instance(condition("Ready", "Unknown", "Checking", "", 1)), "Progressing", ""),
    ],
)
def test_portal_instance_health(obj: dict[str, Any], status: str, message: str) -> None:
    result = health(obj)
    assert result["status"] == status
    assert message in result["message"]


def test_empty_reason_and_message_read_as_absent() -> None:
    failed = condition("Ready", "False", "InstallFailed")
    failed["message"] = ""
    assert health(portal("Failed", failed)) == {
        "status": "Degraded",
        "message": "InstallFailed",
    }


def test_status_without_metadata_generation() -> None:
    obj = portal("Ready", READY)
    del obj["metadata"]["generation"]
    assert health(obj)["status"] == "Healthy"


def test_docs_carry_the_scripts_verbatim() -> None:
    """docs/install.md shows argocd-cm entries; they must be the shipped scripts."""
    docs = (REPO / "docs" / "install.md").read_text()
    for kind, filename in SCRIPTS.items():
        key = f"resource.customizations.health.portico.dev_{kind}: |"
        match = re.search(re.escape(key) + r"\n((?:    .*\n|\n)+)", docs)
        assert match, f"docs/install.md has no {key} block"
        block = "\n".join(line[4:] for line in match.group(1).rstrip("\n").split("\n"))
        assert block.strip() == (HEALTH_DIR / filename).read_text().strip(), kind
