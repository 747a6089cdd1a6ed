"""stacks/portals and PortalSet under Pulumi's mocks: what the program declares — resources,
inputs, dependencies, aliases, outputs — against a fake cluster. That the engine then waits,
converges, keeps stacks across renames and reports the real status is proven only by the
real-engine tier (tests/pulumi_tier/test_stacks.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from portico_stack import portals

from portico.core import names
from tests.support.stacks import CLUSTER_DOMAIN, STACKS, Run, run, run_program

PORTAL = "kubernetes:portico.dev/v1alpha1:Portal"
INSTANCE = "kubernetes:portico.dev/v1alpha1:PortalInstance"
SECRET = "kubernetes:core/v1:Secret"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
EXAMPLE = STACKS / "portals" / "portals.yaml"


def example_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]


def crd_reads(result: Run) -> set[str]:
    return {r.urn for r in result.of_type(CRD) if r.read}


def portal_doc(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    _, portal, _ = example_docs()
    return {
        **portal,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**portal["spec"], "subdomain": name, **spec},
    }


def test_file_declares_every_object_with_its_spec() -> None:
    result = run_program("portals", {"file": "portals.yaml"})
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


def test_everything_depends_on_the_crds_and_portals_on_their_instance() -> None:
    result = run_program("portals", {"file": "portals.yaml"})
    crds = crd_reads(result)
    assert {r.name for r in result.of_type(CRD)} == {
        "crd-portals.portico.dev",
        "crd-portalinstances.portico.dev",
        "crd-portalinvitations.portico.dev",
    }
    (instance,) = result.of_type(INSTANCE)
    assert crds <= set(instance.dependencies)
    for portal in result.of_type(PORTAL):
        assert crds <= set(portal.dependencies)
        assert instance.urn in portal.dependencies


def test_outputs_are_read_from_the_objects_status_not_computed() -> None:
    # The fake cluster's status.url has a domain no input names: the outputs must
    # have read it from the object, not computed it.
    result = run_program("portals", {"file": "portals.yaml"})
    ready = {"phase": "Ready", "ready": "True", "reason": "Ready"}
    assert result.outputs == {
        "portals": {
            "support/contoso-support": {
                **ready,
                "url": f"https://contoso-support.{CLUSTER_DOMAIN}",
            },
            "partners/partner-hub": {**ready, "url": f"https://partner-hub.{CLUSTER_DOMAIN}"},
        },
        "urls": {
            "support/contoso-support": f"https://contoso-support.{CLUSTER_DOMAIN}",
            "partners/partner-hub": f"https://partner-hub.{CLUSTER_DOMAIN}",
        },
    }


def test_portals_ask_the_provider_to_await_ready_within_the_timeout() -> None:
    result = run_program("portals", {"file": "portals.yaml", "readyTimeout": "4m"})
    for obj in [*result.of_type(PORTAL), *result.of_type(INSTANCE)]:
        annotations = obj.inputs["metadata"]["annotations"]
        assert annotations["pulumi.com/waitFor"] == "condition=Ready", obj.name
        timeouts = obj.request.customTimeouts
        assert (timeouts.create, timeouts.update) == ("4m", "4m"), obj.name


def test_paused_portals_and_own_annotations_are_not_awaited() -> None:
    from portico_stack import PortalSet, PortalSetArgs

    instance, _, _ = example_docs()
    paused = portal_doc("resting", "team", paused=True)
    own = portal_doc("own", "team")
    own["metadata"]["annotations"] = {"pulumi.com/skipAwait": "true", "team": "a"}
    result = run(
        lambda: PortalSet("s", PortalSetArgs.from_objects([instance, paused, own])),
    )
    by_name = {r.inputs["metadata"]["name"]: r for r in result.of_type(PORTAL)}
    assert "pulumi.com/waitFor" not in by_name["resting"].inputs["metadata"]["annotations"]
    assert by_name["own"].inputs["metadata"]["annotations"] == {
        "pulumi.com/skipAwait": "true",
        "team": "a",
    }


def test_resource_names_cannot_collide() -> None:
    # "a-b"/"c" and "a"/"b-c" once made the same "<set>-portal-a-b-c".
    from portico_stack import PortalSet, PortalSetArgs

    instance, _, _ = example_docs()
    docs = [instance, portal_doc("c", "a-b"), portal_doc("b-c", "a")]
    result = run(lambda: PortalSet("s", PortalSetArgs.from_objects(docs)))
    names = sorted(r.name for r in result.of_type(PORTAL))
    assert names == ["s:a-b/c", "s:a/b-c"]
    # The colliding old name is nobody's alias (the engine refuses a shared alias).
    for portal in result.of_type(PORTAL):
        assert aliases(portal) == [], portal.name


def aliases(registration: Any) -> list[str]:
    request = registration.request
    return [a.spec.name for a in request.aliases] or list(request.aliasURNs)


def test_earlier_names_are_declared_as_aliases() -> None:
    result = run_program("portals", {"file": "portals.yaml"})
    got = {r.name: aliases(r) for r in [*result.of_type(PORTAL), *result.of_type(INSTANCE)]}
    assert got == {
        "portals:contoso-crm": ["portals-instance-contoso-crm"],
        "portals:support/contoso-support": ["portals-portal-support-contoso-support"],
        "portals:partners/partner-hub": ["portals-portal-partners-partner-hub"],
    }


def test_secrets_from_config_are_sent_as_secrets_and_come_first() -> None:
    result = run_program(
        "portals",
        {
            "file": "portals.yaml",
            "secrets": {
                "support/contoso-pfx": {
                    "data": {"certificate.pfx": "MIIKcQ=="},
                    "stringData": {"password": "pfx-password"},
                },
                "portico-system/contoso-crm-credentials": {"stringData": {"token": "t0ken"}},
            },
        },
    )
    secrets = {r.name: r for r in result.of_type(SECRET)}
    assert set(secrets) == {
        "portals:support/contoso-pfx",
        "portals:portico-system/contoso-crm-credentials",
    }
    pfx = secrets["portals:support/contoso-pfx"]
    assert pfx.inputs["metadata"] == {
        "name": "contoso-pfx",
        "namespace": "support",
        "labels": {names.SECRET_LABEL: "portals"},
    }
    assert portals.SECRET_LABEL == names.SECRET_LABEL
    assert pfx.secret_paths() == {"data", "stringData"}
    assert secrets["portals:portico-system/contoso-crm-credentials"].secret_paths() == {
        "stringData"
    }
    secret_urns = {r.urn for r in secrets.values()}
    for obj in [*result.of_type(PORTAL), *result.of_type(INSTANCE)]:
        assert secret_urns <= set(obj.dependencies), obj.name


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"no-namespace": {"stringData": {"a": "b"}}}, "NAMESPACE/NAME"),
        ({"ns/name": {"password": "x"}}, "data and/or stringData"),
    ],
)
def test_bad_secrets_are_refused(secrets: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        run_program("portals", {"file": "portals.yaml", "secrets": secrets})


def test_objects_from_pulumi_config() -> None:
    instance, portal, _ = example_docs()
    del portal["metadata"]["namespace"]
    result = run_program("portals", {"instances": [instance], "portals": [portal]})
    (declared,) = result.of_type(PORTAL)
    # A Portal without a namespace lands in "default", as kubectl would put it.
    assert declared.inputs["metadata"]["namespace"] == "default"
    assert result.outputs["urls"] == {
        "default/contoso-support": f"https://contoso-support.{CLUSTER_DOMAIN}"
    }


def test_with_the_platform_component_portals_wait_for_the_applied_crds() -> None:
    from portico_stack import PortalSet, PortalSetArgs, PorticoPlatform, PorticoPlatformArgs

    def program() -> None:
        platform = PorticoPlatform("portico", PorticoPlatformArgs(base_domain="portals.acme.test"))
        PortalSet(
            "portals",
            PortalSetArgs.from_file(EXAMPLE, depends_on=platform.crd_resources),
        )

    result = run(program)
    applied = {r.urn for r in result.of_type(CRD)}
    assert len(applied) == 3  # Portal, PortalInstance, PortalInvitation
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
        PortalSetArgs.from_objects([doc])


def test_example_file_passes_portico_plan() -> None:
    # The example is also what `portico plan` accepts, so it would reach Ready.
    from click.testing import CliRunner

    from portico.cli import main

    result = CliRunner().invoke(main, ["plan", str(EXAMPLE), "-o", "table"])
    assert result.exit_code == 0, result.output
    assert "contoso-support-provision-1" in result.output
