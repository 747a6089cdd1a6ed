"""stacks/platform and PorticoPlatform under Pulumi's mocks: what the program declares —
resources, inputs, dependencies, retain-on-delete, outputs. What the engine does with it
(installs, keeps the CRDs on destroy) is proven by tests/pulumi_tier/test_stacks.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.stacks import REPO, run, run_program

RELEASE = "kubernetes:helm.sh/v3:Release"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
NAMESPACE = "kubernetes:core/v1:Namespace"


def repo_crd_names() -> set[str]:
    return {
        doc["metadata"]["name"]
        for path in (REPO / "crds").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }


def test_program_registers_namespace_crds_and_release() -> None:
    result = run_program("platform", {"baseDomain": "portals.acme.test"})

    assert {r.name for r in result.of_type(CRD)} == repo_crd_names()
    (namespace,) = result.of_type(NAMESPACE)
    assert namespace.inputs["metadata"]["name"] == "portico-system"
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    (release,) = result.of_type(RELEASE)
    assert release.inputs["chart"] == str(REPO / "charts" / "portico")
    assert release.inputs["namespace"] == "portico-system"
    # Pulumi owns the CRDs (and so upgrades them); Helm must not install its copy.
    assert release.inputs["skipCrds"] is True
    assert release.inputs["atomic"] is True


def _ints(value: Any) -> Any:
    # Protobuf structs carry every number as a float.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def test_crds_come_from_the_repository_unchanged() -> None:
    result = run_program("platform", {"baseDomain": "portals.acme.test"})
    by_name = {r.name: _ints(r.inputs) for r in result.of_type(CRD)}
    for path in (REPO / "crds").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert by_name[doc["metadata"]["name"]]["spec"] == doc["spec"]


def test_release_depends_on_every_crd_and_the_namespace() -> None:
    result = run_program("platform", {"baseDomain": "portals.acme.test"})
    (release,) = result.of_type(RELEASE)
    needed = {r.urn for r in result.of_type(CRD)} | {r.urn for r in result.of_type(NAMESPACE)}
    assert needed <= set(release.dependencies)


def test_typed_config_becomes_chart_values() -> None:
    result = run_program(
        "platform",
        {
            "baseDomain": "portals.acme.test",
            "namespace": "ops",
            "defaultTLSSecret": "wildcard",
            "trialDays": 14,
            "watchNamespaces": ["team-a", "team-b"],
            "replicas": 2,
            "logFormat": "text",
            "imageRepository": "registry.acme.test/portico",
            "imageTag": "1.2.3",
            "certManager": True,
            "values": {"metrics": {"serviceMonitor": {"enabled": True}}},
        },
    )
    (release,) = result.of_type(RELEASE)
    values = release.inputs["values"]
    assert release.inputs["namespace"] == "ops"
    assert values["baseDomain"] == "portals.acme.test"
    assert values["defaultTLSSecret"] == "wildcard"
    assert values["trialDays"] == 14
    assert values["watchNamespaces"] == ["team-a", "team-b"]
    assert values["replicas"] == 2
    assert values["logFormat"] == "text"
    assert values["image"] == {"repository": "registry.acme.test/portico", "tag": "1.2.3"}
    assert values["certManager"] == {"enabled": True}
    assert values["metrics"] == {"serviceMonitor": {"enabled": True}}
    # HA is leader election over a Lease: no CRD of Kopf's is needed.
    assert not [r for r in result.of_type(CRD) if r.name.endswith(".kopf.dev")]


def test_outputs() -> None:
    result = run_program("platform", {"baseDomain": "portals.acme.test", "namespace": "ops"})
    assert sorted(result.outputs.pop("crdNames")) == sorted(repo_crd_names())
    assert result.outputs == {
        "namespace": "ops",
        "releaseName": "portico",
        "baseDomain": "portals.acme.test",
    }


def test_an_existing_namespace_is_not_declared() -> None:
    from portico_stack import PorticoPlatform, PorticoPlatformArgs

    result = run(
        lambda: PorticoPlatform(
            "p",
            PorticoPlatformArgs(
                base_domain="portals.acme.test", namespace="kube-ops", create_namespace=False
            ),
        )
    )
    assert not result.of_type(NAMESPACE)
    (release,) = result.of_type(RELEASE)
    assert release.inputs["namespace"] == "kube-ops"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("replicas", 0, "replicas must be at least 1"),
        ("log_format", "xml", "log_format must be json or text"),
        ("trial_days", 0, "trial_days must be at least 1"),
    ],
)
def test_args_reject_bad_values(field: str, value: object, message: str) -> None:
    from portico_stack import PorticoPlatformArgs

    with pytest.raises(ValueError, match=message):
        PorticoPlatformArgs(base_domain="portals.acme.test", **{field: value})  # type: ignore[arg-type]


def test_missing_base_domain_fails_with_the_config_key() -> None:
    with pytest.raises(Exception, match="baseDomain"):
        run_program("platform", {})


def test_crds_and_namespace_are_marked_retain_on_delete_and_crds_alias_their_earlier_urns() -> None:
    # Deleting a CRD deletes every Portal: `pulumi destroy` must leave them.
    result = run_program("platform", {"baseDomain": "portals.acme.test", "replicas": 2})
    crds = result.of_type(CRD)
    assert {c.name for c in crds} == repo_crd_names()  # no Kopf peering CRDs any more
    for crd in crds:
        assert crd.request.retainOnDelete is True, crd.name
        urns = [a.urn for a in crd.request.aliases] or list(crd.request.aliasURNs)
        # Earlier versions applied each file as a yaml.ConfigFile (a parent in the URN).
        assert any(f"$kubernetes:yaml:ConfigFile${CRD}::{crd.name}" in u for u in urns), urns
    # The namespace too: the instances' credentials Secrets live there.
    (namespace,) = result.of_type(NAMESPACE)
    assert namespace.request.retainOnDelete is True
    (release,) = result.of_type(RELEASE)
    assert not release.request.retainOnDelete


def test_sdk_pins_match_the_engine_portico_builds() -> None:
    # The engine loads the provider plugin by the version the SDK asks for.
    import importlib.metadata

    from portico_dev import pulumi_engine

    cli, provider = pulumi_engine.cli_version(), pulumi_engine.provider_version()
    assert importlib.metadata.version("pulumi") == cli.lstrip("v")
    assert importlib.metadata.version("pulumi-kubernetes") == provider.lstrip("v")
    pins = (REPO / "stacks" / "requirements.txt").read_text().split()
    assert f"pulumi=={cli.lstrip('v')}" in pins
    assert f"pulumi-kubernetes=={provider.lstrip('v')}" in pins
