"""stacks/platform and stacks/portals through the real engine, provider and control plane.

One story, in order (each step needs the one before; a missed step fails, never skips):
platform up (CRDs + chart) -> the chart's operator runs -> portals up converges, its
outputs read from the cluster -> a second preview has no diff -> a program change
updates in place with a new attempt -> no secret in state or output -> destroy of the
platform keeps the CRDs and the portals -> destroy of the portals removes them all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from portico_dev import ControlPlane
from tests.support.certs import make_pfx
from tests.support.chart import HARNESS_ENV, children, stable_resource_version
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal
from tests.support.pulumi import Engine, Stack
from tests.support.runtime import TOKEN, running_instance
from tests.support.stacks import SECRET_SIG, SIG_KEY

TEAM, SYSTEM, RELEASE = "team-pulumi", "portico-system", "portico"
INSTANCE = "contoso-crm"
ZONE, HOST = "pulumi.test", "www.pulumi.test"
# Secret values that must never be readable in the state or the engine's output.
CREDENTIALS = TOKEN  # the stand-in instance's own credentials
# Where the module's stand-in instance answers (fixture `standin`).
STANDIN: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def standin() -> Iterator[str]:
    """The backing instance: the operator mints each portal's token there."""
    with running_instance() as (url, _):
        STANDIN[:] = [url]
        yield url
        STANDIN.clear()


PFX_PASSWORD = "pfx-password-9b1f04"
SHARED_KEY = "shared-key-77d3a1"
# Every CRD in crds/ (the one source of truth): the platform stack installs them all.
CRDS = tuple(
    yaml.safe_load(path.read_text())["metadata"]["name"]
    for path in sorted((Path(__file__).resolve().parents[2] / "crds").glob("*.yaml"))
)
PFX, _ = make_pfx(HOST, PFX_PASSWORD)
PFX_BASE64 = base64.b64encode(PFX).decode()

done: set[str] = set()


def after(step: str) -> None:
    if step not in done:
        pytest.fail(f"needs the earlier step {step!r}, which did not pass", pytrace=False)


@pytest.fixture(scope="module")
def cluster(plane: ControlPlane) -> Cluster:
    return Cluster(plane)


@pytest.fixture(scope="module")
def platform(engine: Engine, dns: AuthoritativeDNS) -> Stack:
    stack = engine.stack("platform", "dev")
    stack.set("baseDomain", BASE_DOMAIN)
    stack.set("logFormat", "text")
    stack.set(
        "values",
        {
            "resyncSeconds": 20,
            "dns": {"nameservers": [f"{dns.address}:{dns.port}"], "timeout": 1},
            # One `pulumi up` creates the portal and waits for Ready: the ownership TXT
            # record (derived from the UID the API server gives it) cannot be in DNS
            # beforehand. This tier is about the stacks; ownership has its own tests.
            "domainOwnership": "Optional",
        },
    )
    return stack


@pytest.fixture(scope="module")
def portals(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    stack = engine.stack("portals", "dev")
    stack.set("file", str(write_portals(tmp_path_factory.mktemp("portals"), "Team site")))
    stack.set("readyTimeout", "4m")
    for path, value in (
        (f'secrets["{SYSTEM}/{INSTANCE}-credentials"].stringData.token', CREDENTIALS),
        (f'secrets["{TEAM}/site-pfx"].data["certificate.pfx"]', PFX_BASE64),
        (f'secrets["{TEAM}/site-pfx"].stringData.password', PFX_PASSWORD),
        (f'secrets["{TEAM}/hub-key"].stringData.sharedKey', SHARED_KEY),
    ):
        stack.set_path(path, value, secret=True)
    return stack


@pytest.fixture(scope="module")
def operators() -> Iterator[list[Operator]]:
    """The chart's operator, run by the test (kwok only pretends to run its pod)."""
    running: list[Operator] = []
    yield running
    for op in running:
        op.stop()


def write_portals(directory: Path, site_name: str, *languages: str) -> Path:
    instance = {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "PortalInstance",
        "metadata": {"name": INSTANCE},
        "spec": {
            "url": STANDIN[0] if STANDIN else "https://crm.example.net",
            "insecure": bool(STANDIN),
            "credentialsSecretRef": {"namespace": SYSTEM, "name": f"{INSTANCE}-credentials"},
            "languages": ["en-US", "de-DE", "fr-FR"],
            "solutions": ["FieldService"],
            "administrators": ["jay@contoso.com"],
            "allowedNamespaces": {"from": "All"},
        },
    }
    site = portal(
        "site",
        TEAM,
        INSTANCE,
        displayName=site_name,
        subdomain="site-pulumi",
        type="Production",
        additionalLanguages=["de-DE", *languages],
        customDomain={"hostname": HOST, "tls": {"pfxSecretRef": {"name": "site-pfx"}}},
    )
    insights = {
        "hubUri": "https://hub.example.net",
        "policyName": "writer",
        "sharedKeySecretRef": {"name": "hub-key", "key": "sharedKey"},
    }
    hub = portal(
        "hub", TEAM, INSTANCE, subdomain="hub-pulumi", analytics={"customerInsights": insights}
    )
    path = directory / f"portals-{len(languages)}.yaml"
    path.write_text(yaml.safe_dump_all([instance, site, hub]))
    return path


def operator_env(cluster: Cluster) -> dict[str, str]:
    deployment = cluster.get("deployment", RELEASE, SYSTEM)
    assert deployment is not None, "the chart's Deployment is missing"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {
        e["name"]: e.get("value", "")
        for e in container["env"]
        if e["name"].startswith("PORTICO_") and e["name"] not in HARNESS_ENV
    }


def walk(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON document."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def lasting_children(cluster: Cluster) -> list[str]:
    """The site's children that nothing but a deletion removes (pods and Jobs come and go)."""
    return [c for c in children(cluster, TEAM, "site") if not c.startswith(("pods/", "jobs/"))]


def test_platform_installs_the_crds_and_the_chart(
    platform: Stack, cluster: Cluster, operators: list[Operator], tmp_path: Path
) -> None:
    result = platform.up()
    assert result["changes"].get("create", 0) >= len(CRDS) + 3, result["changes"]
    assert sorted(result["outputs"]["crdNames"]["value"]) == sorted(CRDS)
    for name in CRDS:
        crd = cluster.get("crd", name)
        assert crd is not None, name
        established = cluster.condition(crd, "Established")
        assert established.get("status") == "True", established
    deployment = cluster.get("deployment", RELEASE, SYSTEM) or {}
    assert deployment.get("status", {}).get("readyReplicas") == 1, deployment.get("status")
    namespace = cluster.get("namespace", SYSTEM) or {}
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    # The operator as the chart's ServiceAccount, with the environment the chart gave it.
    kubeconfig = cluster.plane.serviceaccount_kubeconfig(
        SYSTEM, RELEASE, create=False, path=tmp_path / "chart.kubeconfig"
    )
    op = Operator(cluster.plane, kubeconfig, tmp_path, **operator_env(cluster))
    op.start()
    operators.append(op)
    cluster.plane.kubectl("create", "namespace", TEAM)
    done.add("platform")


def test_portals_converge_and_report_the_clusters_status(
    portals: Stack, cluster: Cluster, dns: AuthoritativeDNS
) -> None:
    after("platform")
    dns.set_zone(ZONE, [f"www CNAME site-pulumi.{BASE_DOMAIN}."])
    result = portals.up()
    # The stack, the component, 3 Secrets, the instance and 2 portals (the CRDs are reads).
    assert result["changes"].get("create") == 8, result["changes"]
    assert set(result["changes"]) <= {"create", "read"}, result["changes"]
    out = result["outputs"]["portals"]["value"]
    for key in (f"{TEAM}/site", f"{TEAM}/hub"):
        name = key.split("/")[1]
        status = cluster.portal(TEAM, name)["status"]
        assert status["phase"] == "Ready", status
        # What `pulumi up` returned is the cluster's own status, not a computed guess.
        assert out[key]["url"] == status["url"] == f"https://{name}-pulumi.{BASE_DOMAIN}"
        assert (out[key]["phase"], out[key]["ready"]) == ("Ready", "True"), out[key]
    assert out[f"{TEAM}/site"]["customDomainUrl"] == f"https://{HOST}"
    assert result["outputs"]["urls"]["value"][f"{TEAM}/hub"] == f"https://hub-pulumi.{BASE_DOMAIN}"
    kids = children(cluster, TEAM, "site")
    for expected in ("deployments/site", "ingresses/site", "secrets/site-tls", "jobs/site-"):
        assert any(c.startswith(expected) for c in kids), (expected, kids)
    done.add("portals")


def test_second_preview_has_no_diff_after_the_operator_wrote_status(
    portals: Stack, platform: Stack, cluster: Cluster
) -> None:
    after("portals")
    for name in ("site", "hub"):
        stable_resource_version(cluster, TEAM, name)
    for stack in (portals, platform):
        # The engine itself fails the preview on any change (--expect-no-changes).
        result = stack.preview(expect_no_changes=True)
        # Reads are the portals program's look at the CRDs, made on every run.
        assert set(result["changes"]) <= {"same", "read"}, (stack.program, result["changes"])
    # Field ownership: Pulumi owns the spec, the operator only the status subresource.
    obj = json.loads(
        cluster.plane.kubectl(
            "get", "portal", "site", "-n", TEAM, "-o", "json", "--show-managed-fields"
        ).stdout
    )
    for entry in obj["metadata"]["managedFields"]:
        if "f:spec" in entry["fieldsV1"]:
            assert entry["manager"].startswith("pulumi"), entry["manager"]
        else:
            assert entry.get("subresource") == "status", entry
    done.add("preview")


def test_a_program_change_updates_in_place_through_a_new_attempt(
    portals: Stack, cluster: Cluster, tmp_path: Path
) -> None:
    after("preview")
    before = cluster.portal(TEAM, "site")
    portals.set("file", str(write_portals(tmp_path, "Team site (renamed)", "fr-FR")))
    result = portals.up()
    assert result["changes"].get("update") == 1, result["changes"]
    assert set(result["changes"]) <= {"update", "same", "read"}, result["changes"]
    now = cluster.portal(TEAM, "site")
    assert now["metadata"]["uid"] == before["metadata"]["uid"], "replaced, not updated"
    assert now["metadata"]["generation"] == before["metadata"]["generation"] + 1
    status = now["status"]
    assert status["observedGeneration"] == now["metadata"]["generation"]
    ready = cluster.condition(now, "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == status["observedGeneration"]
    assert status["provisioning"]["attempt"] > before["status"]["provisioning"]["attempt"]
    assert now["spec"]["displayName"] == "Team site (renamed)"
    out = result["outputs"]["portals"]["value"][f"{TEAM}/site"]
    assert (out["phase"], out["ready"]) == ("Ready", "True"), out
    done.add("update")


def test_secrets_are_never_in_the_state_or_the_engines_output(
    engine: Engine, portals: Stack, platform: Stack
) -> None:
    after("update")
    forms = {
        value: [value, base64.b64encode(value.encode()).decode()]
        for value in (CREDENTIALS, PFX_PASSWORD, SHARED_KEY)
    }
    forms["the .pfx"] = [PFX_BASE64[:64], PFX_BASE64[-64:]]
    files = engine.files()
    assert any(p.suffix == ".json" and "stacks" in p.parts for p in files), files
    texts = {str(p): p.read_text(errors="replace") for p in files}
    texts["engine output"] = "\n".join(portals.transcript + platform.transcript)
    for where, text in texts.items():
        for value, variants in forms.items():
            for variant in variants:
                assert variant not in text, f"{value!r} readable in {where}"
    # They are in the state, encrypted with the stack's passphrase.
    state = engine.backend / ".pulumi" / "stacks" / "portico-portals" / "dev.json"
    encrypted = [v for v in walk(json.loads(state.read_text())) if v.get(SIG_KEY) == SECRET_SIG]
    assert len(encrypted) >= 3 and all("ciphertext" in v for v in encrypted), encrypted
    done.add("secrets")


def test_destroying_the_platform_keeps_the_crds_the_namespace_and_every_portal(
    platform: Stack, cluster: Cluster, operators: list[Operator]
) -> None:
    after("update")
    for op in operators:  # the chart's operator goes with its Deployment
        op.stop()
    kids = lasting_children(cluster)
    result = platform.destroy()
    assert result["changes"].get("delete", 0) >= 3, result["changes"]
    assert cluster.get("deployment", RELEASE, SYSTEM) is None
    for name in CRDS:
        assert cluster.get("crd", name) is not None, f"{name} was deleted"
    assert cluster.portal(TEAM, "site")["status"]["phase"] == "Ready"
    assert lasting_children(cluster) == kids
    # The namespace stays with the instance's credentials in it.
    assert cluster.get("secret", f"{INSTANCE}-credentials", SYSTEM) is not None
    # Installing again adopts the CRDs left behind (server-side apply, same fields).
    again = platform.up()
    assert again["changes"].get("create", 0) >= len(CRDS) + 3, again["changes"]
    assert cluster.get("deployment", RELEASE, SYSTEM) is not None
    done.add("platform-destroyed")


def test_destroying_the_portals_removes_them_and_their_children(
    portals: Stack, cluster: Cluster
) -> None:
    after("platform-destroyed")
    result = portals.destroy()
    assert result["changes"].get("delete", 0) >= 6, result["changes"]
    for name in ("site", "hub"):
        assert cluster.get("portal", name, TEAM) is None, name
        wait_for(
            f"every child of {name} to be garbage-collected",
            lambda name=name: children(cluster, TEAM, name) == [],  # type: ignore[misc]
            timeout=90,
        )
    assert cluster.get("portalinstance", INSTANCE) is None
