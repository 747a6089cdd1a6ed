"""Rendering: golden files per example, determinism, ownership and labels on every child."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from portico.api import model, validation
from portico.core import render
from portico.core.features import features, solutions
from portico.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if "instance" not in p.name)
GOLDEN = ROOT / "tests" / "golden"
SETTINGS = Settings(
    base_domain="portals.example.com",
    default_host_tls=True,
    portal_network_policy=True,
    network_policy_ingress_namespaces=("kubernetes.io/metadata.name=ingress-nginx",),
)


def instance() -> model.PortalInstance:
    raw = yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    return model.parse_instance(validation.admit("PortalInstance", raw)[0])


def portal_from(raw: dict) -> model.Portal:
    defaulted, problems = validation.admit("Portal", raw)
    assert problems == []
    return model.parse_portal(defaulted)


def dump(children: list[dict]) -> str:
    return yaml.safe_dump_all(children, sort_keys=False, allow_unicode=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_golden(path: Path) -> None:
    portal = portal_from(yaml.safe_load(path.read_text()))
    facts = render.Facts(custom_host_ready=bool(portal.custom_domain), custom_tls_secret="x-tls")
    text = dump(render.children(portal, instance(), SETTINGS, facts))
    golden = GOLDEN / f"{path.stem}.yaml"
    if os.environ.get("PORTICO_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"run with PORTICO_UPDATE_GOLDEN=1 to create {golden.name}"
    assert text == golden.read_text()


def test_the_default_host_uses_the_controllers_default_certificate() -> None:
    """No Secret is named for the default host (no namespace holds the wildcard key); a
    custom host keeps its own certificate Secret. Off, the default host has no TLS entry."""
    portal = portal_from(
        yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    )
    facts = render.Facts(custom_host_ready=True, custom_tls_secret="x-tls")
    ingress = next(
        c for c in render.children(portal, instance(), SETTINGS, facts) if c["kind"] == "Ingress"
    )
    default_host, custom_host = (rule["host"] for rule in ingress["spec"]["rules"])
    assert ingress["spec"]["tls"] == [
        {"hosts": [default_host]},
        {"hosts": [custom_host], "secretName": "x-tls"},
    ]
    off = Settings(base_domain="portals.example.com")
    ingress = next(
        c for c in render.children(portal, instance(), off, facts) if c["kind"] == "Ingress"
    )
    assert ingress["spec"]["tls"] == [{"hosts": [custom_host], "secretName": "x-tls"}]


ALLOWED = {
    "Partner": [
        "CustomerSelfService",
        "Custom",
        "Partner",
        "PartnerProjectService",
        "PartnerFieldService",
        "Community",
    ],
    "Customer": ["CustomerSelfService", "Custom", "Community"],
    "Employee": ["EmployeeSelfService"],
}
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@st.composite
def portals(draw: st.DrawFn) -> dict:
    audience = draw(st.sampled_from(sorted(ALLOWED)))
    spec = {
        "displayName": draw(st.text(min_size=1, max_size=100)),
        "type": draw(st.sampled_from(["Trial", "Production"])),
        "subdomain": draw(label),
        "instanceRef": {"name": "contoso-crm"},
        "language": "en-US",
        "additionalLanguages": draw(st.lists(st.sampled_from(["de-DE", "fr-FR"]), unique=True)),
        "administrator": "jay@contoso.com",
        "audience": audience,
        "template": draw(st.sampled_from(ALLOWED[audience])),
    }
    if draw(st.booleans()):
        spec["customDomain"] = {
            "hostname": f"{draw(label)}.contoso.com",
            "tls": {"secretRef": {"name": "tls"}},
        }
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": draw(label), "namespace": draw(label), "uid": "u-1"},
        "spec": spec,
    }


@settings(max_examples=60, deadline=None)
@given(raw=portals(), verified=st.booleans(), attempt=st.integers(1, 999))
def test_rendering_is_deterministic_and_owned(raw: dict, verified: bool, attempt: int) -> None:
    portal = portal_from(raw)
    facts = render.Facts(attempt=attempt, custom_host_ready=verified, custom_tls_secret="t")
    first = dump(render.children(portal, instance(), SETTINGS, facts))
    assert first == dump(render.children(portal_from(raw), instance(), SETTINGS, facts))
    for child in yaml.safe_load_all(first):
        meta = child["metadata"]
        assert meta["namespace"] == portal.namespace
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "portico"
        assert meta["ownerReferences"] == [portal.owner_reference()]
        assert len(meta["name"]) <= 63


def test_config_change_rolls_the_deployment() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    before = render.children(portal_from(raw), instance(), SETTINGS)[1]
    raw["spec"]["displayName"] = "Renamed"
    after = render.children(portal_from(raw), instance(), SETTINGS)[1]
    key = "portico.dev/config-checksum"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


def test_custom_host_only_once_ready_and_secrets_never_in_config() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    portal = portal_from(raw)

    def hosts(facts: render.Facts) -> list[str]:
        return [
            r["host"]
            for r in render.children(portal, instance(), SETTINGS, facts)[3]["spec"]["rules"]
        ]

    assert hosts(render.Facts()) == ["contoso-support.portals.example.com"]
    assert "support.contoso.com" in hosts(
        render.Facts(custom_host_ready=True, custom_tls_secret="t")
    )
    config = json.loads(render.children(portal, instance(), SETTINGS)[0]["data"]["portal.json"])
    assert config["analytics"]["customerInsights"]["sharedKeyFile"].startswith(
        "/etc/portico/secrets/"
    )
    assert "clientSecretRef" not in json.dumps(config)


def test_feature_matrix() -> None:
    assert "ideas" in features("Community") and "ideas" not in features("CustomerSelfService")
    assert "organization-sign-in" in features("EmployeeSelfService")
    assert "field-service" in features("Partner")
    assert "content-management" not in features("Custom") and "base" in features("Custom")
    assert solutions("PartnerFieldService") == ["PortalBase", "Partner", "PartnerFieldService"]
