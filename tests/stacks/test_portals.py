"""stacks/portals and PortalSet under Pulumi's mocks: resources, inputs, ordering, outputs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.stacks.harness import PLATFORM_OUTPUTS, STACKS, Run, run, run_program

PORTAL = "kubernetes:portico.dev/v1alpha1:Portal"
INSTANCE = "kubernetes:portico.dev/v1alpha1:PortalInstance"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
EXAMPLE = STACKS / "portals" / "portals.yaml"


def example_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]


def crd_reads(result: Run) -> set[str]:
    return {r.urn for r in result.of_type(CRD) if r.read}


def test_file_declares_every_object_with_its_spec() -> None:
    result = run_program("portals", {"file": "portals.yaml", "baseDomain": "portals.acme.test"})
    declared = {
        (r.inputs["kind"], r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"]): r
        for r in [*result.of_type(PORTAL), *result.of_type(INSTANCE)]
    }
    for doc in example_docs():
        key = (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])
        assert key in declared, key
        assert declared[key].inputs["apiVersion"] == "portico.dev/v1alpha1"
        assert declared[key].inputs["spec"] == doc["spec"]
    assert len(declared) == len(example_docs())


def test_everything_waits_for_the_crds_and_portals_for_their_instance() -> None:
    result = run_program("portals", {"file": "portals.yaml", "baseDomain": "portals.acme.test"})
    crds = crd_reads(result)
    assert {r.name for r in result.of_type(CRD)} == {
        "crd-portals.portico.dev",
        "crd-portalinstances.portico.dev",
    }
    (instance,) = result.of_type(INSTANCE)
    assert crds <= set(instance.dependencies)
    for portal in result.of_type(PORTAL):
        assert crds <= set(portal.dependencies)
        assert instance.urn in portal.dependencies


def test_urls_are_exported_per_portal() -> None:
    result = run_program("portals", {"file": "portals.yaml", "baseDomain": "portals.acme.test"})
    assert result.outputs == {
        "urls": {
            "support/contoso-support": "https://contoso-support.portals.acme.test",
            "partners/partner-hub": "https://partner-hub.portals.acme.test",
        }
    }


def test_base_domain_from_the_platform_stack() -> None:
    result = run_program(
        "portals", {"file": "portals.yaml", "platformStack": "acme/portico-platform/prod"}
    )
    (ref,) = result.of_type("pulumi:pulumi:StackReference")
    assert ref.inputs["id"] == "acme/portico-platform/prod"
    domain = PLATFORM_OUTPUTS["baseDomain"]
    assert result.outputs["urls"]["support/contoso-support"] == (
        f"https://contoso-support.{domain}"
    )


def test_objects_from_pulumi_config() -> None:
    instance, portal, _ = example_docs()
    del portal["metadata"]["namespace"]
    result = run_program(
        "portals",
        {"baseDomain": "portals.acme.test", "instances": [instance], "portals": [portal]},
    )
    (declared,) = result.of_type(PORTAL)
    # A Portal without a namespace lands in "default", as kubectl would put it.
    assert declared.inputs["metadata"]["namespace"] == "default"
    assert result.outputs["urls"] == {
        "default/contoso-support": "https://contoso-support.portals.acme.test"
    }


def test_with_the_platform_component_portals_wait_for_the_applied_crds() -> None:
    from portico_stack import PortalSet, PortalSetArgs, PorticoPlatform, PorticoPlatformArgs

    def program() -> None:
        platform = PorticoPlatform("portico", PorticoPlatformArgs(base_domain="portals.acme.test"))
        PortalSet(
            "portals",
            PortalSetArgs.from_file(
                EXAMPLE, base_domain="portals.acme.test", depends_on=platform.crd_resources
            ),
        )

    result = run(program)
    applied = {r.urn for r in result.of_type(CRD)}
    assert len(applied) == 2
    for obj in [*result.of_type(PORTAL), *result.of_type(INSTANCE)]:
        assert applied <= set(obj.dependencies), obj.name


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "kind Portal"),
        ({"apiVersion": "portico.dev/v1alpha1", "kind": "Portal", "spec": {}}, "metadata.name"),
        (
            {"apiVersion": "portico.dev/v1alpha1", "kind": "Portal", "metadata": {"name": "p"}},
            "has no spec",
        ),
        (
            {
                "apiVersion": "portico.dev/v1alpha1",
                "kind": "Portal",
                "metadata": {"name": "p"},
                "spec": {"displayName": "P"},
            },
            "spec.subdomain",
        ),
    ],
)
def test_bad_documents_are_refused_before_anything_is_declared(
    doc: dict[str, Any], message: str
) -> None:
    from portico_stack import PortalSetArgs

    with pytest.raises(ValueError, match=message):
        PortalSetArgs.from_objects([doc], base_domain="portals.acme.test")


def test_example_file_passes_portico_plan() -> None:
    # The example is also what `portico plan` accepts, so it would reach Ready.
    from click.testing import CliRunner

    from portico.cli import main

    result = CliRunner().invoke(main, ["plan", str(EXAMPLE), "-o", "table"])
    assert result.exit_code == 0, result.output
    assert "contoso-support-provision-1" in result.output
