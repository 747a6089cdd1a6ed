"""`portico plan` as a user runs it: exit codes, one line per problem, output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.corpus import Case, load_cases
from tests.support.plan import plan

ROOT = Path(__file__).resolve().parents[2]
PORTICO = str(Path(sys.executable).with_name("portico"))
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))


def test_console_script() -> None:
    result = subprocess.run(
        [PORTICO, "plan", "-", "-o", "table"],
        input=(ROOT / "examples" / "customer-custom.yaml").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "customer-custom-provision-1" in result.stdout
    bad = subprocess.run(
        [PORTICO, "plan", "-"], input="a: [b", capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_all_examples_plan_cleanly() -> None:
    result = plan(*EXAMPLES)
    assert result.returncode == 0, result.stderr
    children = list(yaml.safe_load_all(result.stdout))
    portals = [yaml.safe_load(Path(p).read_text()) for p in EXAMPLES if "instance" not in p]
    expected = 0
    for portal in portals:
        spec = portal["spec"]
        tls = (spec.get("customDomain") or {}).get("tls") or {}
        # the -instance Secret (token and session keys), ConfigMap, Deployment, Service,
        # Ingress, provisioning Job; a translations Job for additional languages; a
        # Certificate for issuerRef.
        expected += 6 + bool(spec.get("additionalLanguages")) + ("issuerRef" in tls)
    assert len(children) == expected
    kinds = {c["kind"] for c in children}
    assert {"Secret", "ConfigMap", "Deployment", "Service", "Ingress", "Job"} <= kinds
    # The portal's token is minted by the instance when applied, never rendered offline,
    # and no key of the instance's own credentials is ever copied.
    secrets = [c for c in children if c["kind"] == "Secret"]
    assert all(s["data"] == {} for s in secrets if s["metadata"]["name"].endswith("-instance"))
    assert "# from the cluster: token: minted for this portal alone by PortalInstance" in (
        result.stdout
    )


def test_output_formats() -> None:
    example = [
        str(ROOT / "examples" / "contoso-instance.yaml"),
        str(ROOT / "examples" / "customer-custom.yaml"),
    ]
    as_json = json.loads(plan(*example, "-o", "json").stdout)
    table = plan(*example, "-o", "table").stdout.splitlines()
    assert [c["kind"] for c in as_json] == [row.split()[0] for row in table[1:]]
    assert table[0].split() == ["KIND", "NAMESPACE", "NAME", "FROM", "THE", "CLUSTER"]
    assert "token: minted for this portal alone by PortalInstance contoso-crm" in table[1]
    custom = plan(
        str(ROOT / "examples" / "contoso-instance.yaml"),
        str(ROOT / "examples" / "customer-customerselfservice.yaml"),
        "-o",
        "table",
    ).stdout
    assert "added once its CNAME is verified" in custom
    # domainOwnership Required (the default): the ownership record too, named.
    assert "and TXT record _portico-challenge." in custom


INVALID = [c for c in load_cases() if not c.valid and c.old is None]


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_case_exits_1_with_one_line_per_problem(case: Case) -> None:
    result = plan("-", stdin=yaml.safe_dump_all(case.documents()))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    name = case.obj["metadata"]["name"]
    namespace = case.obj["metadata"].get("namespace", "")
    prefix = {
        "Portal": f"{namespace}/{name}: ",
        "PortalInvitation": f"{namespace}/portalinvitation/{name}: ",
    }.get(case.kind, f"portalinstance/{name}: ")
    assert lines and all(line.startswith(prefix) for line in lines), lines
    assert any(case.expected in line.removeprefix(prefix) for line in lines), lines
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("a: [b\n", "not valid YAML"),
        ("kind: Deployment\napiVersion: apps/v1\n", "kind 'Deployment' is not one of"),
        ("- just\n- a list\n", "kind None is not one of"),
        (
            "kind: Portal\napiVersion: portico.dev/v1\nmetadata: {name: x}\n",
            "must be portico.dev/v1alpha1",
        ),
        ("kind: Portal\napiVersion: portico.dev/v1alpha1\n", "has no metadata.name"),
        ("", "no Portal, PortalInstance or PortalInvitation"),
    ],
)
def test_garbage_exits_2_without_traceback(stdin: str, message: str) -> None:
    result = plan("-", stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = plan(str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: cannot read" in result.stderr


def test_without_instances_cross_checks_are_skipped() -> None:
    result = plan(str(ROOT / "examples" / "customer-custom.yaml"))
    assert result.returncode == 0


def _with(spec: dict[str, object]) -> str:
    """The contoso instance and customer-custom with SPEC merged in, as one YAML stream."""
    instance = (ROOT / "examples" / "contoso-instance.yaml").read_text()
    portal = yaml.safe_load((ROOT / "examples" / "customer-custom.yaml").read_text())
    portal["spec"].update(spec)
    return instance + "---\n" + yaml.safe_dump(portal)


def test_plan_says_what_decide_says() -> None:
    """`portico plan` is the operator's decision, offline: what decide() refuses (and the
    offline cross-checks cannot see) is refused here too, in decide()'s words."""
    issuer = {
        "customDomain": {"hostname": "support.contoso.com", "tls": {"issuerRef": {"name": "le"}}}
    }
    refused = plan("-", stdin=_with(issuer))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "does not become Ready (CertManagerNotEnabled:" in refused.stderr
    image = _with({"runtime": {"image": "registry.example.com/own:1"}})
    refused = plan("-", stdin=image)
    assert refused.returncode == 1 and "ImageNotAllowed" in refused.stderr


def test_issuer_portal_with_cert_manager_plans_its_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTICO_CERT_MANAGER", "true")
    monkeypatch.setenv("PORTICO_ALLOWED_ISSUERS", "Issuer/le")
    issuer = {
        "customDomain": {"hostname": "support.contoso.com", "tls": {"issuerRef": {"name": "le"}}}
    }
    result = plan("-", "-o", "json", stdin=_with(issuer))
    assert result.returncode == 0, result.stderr
    children = json.loads(result.stdout)
    kinds = [c["kind"] for c in children]
    assert "Certificate" in kinds and kinds.index("Certificate") < kinds.index("Job")
    ingress = next(c for c in children if c["kind"] == "Ingress")
    assert "support.contoso.com" in json.dumps(ingress)


def test_plan_refuses_an_issuer_the_settings_do_not_allow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator's IssuerNotAllowed, offline: with cert-manager on, only listed issuers."""
    monkeypatch.setenv("PORTICO_CERT_MANAGER", "true")
    monkeypatch.setenv("PORTICO_ALLOWED_ISSUERS", "ClusterIssuer/letsencrypt")
    tls = {"issuerRef": {"name": "internal-ca", "kind": "ClusterIssuer"}}
    refused = plan(
        "-", stdin=_with({"customDomain": {"hostname": "support.contoso.com", "tls": tls}})
    )
    assert refused.returncode == 1 and refused.stdout == ""
    assert "does not become Ready (IssuerNotAllowed:" in refused.stderr
    assert "ClusterIssuer/internal-ca" in refused.stderr


def test_plan_shows_nothing_only_the_cluster_knows() -> None:
    """Copied values stay empty: no credentials, no converted certificate, no checksum."""
    pfx = {
        "customDomain": {"hostname": "support.contoso.com", "tls": {"pfxSecretRef": {"name": "p"}}}
    }
    result = plan("-", "-o", "json", stdin=_with(pfx))
    assert result.returncode == 0, result.stderr
    children = json.loads(result.stdout)
    names = {(c["kind"], c["metadata"]["name"]) for c in children}
    assert ("Secret", "customer-custom-tls") not in names
    assert "converted from the .pfx in Secret p at run time" in result.stderr
    for child in children:
        assert "portico.dev/applied-hash" not in json.dumps(child)
    deployment = next(c for c in children if (c["kind"], c["metadata"]["name"]) == (
        "Deployment", "customer-custom"))  # fmt: skip
    pod = deployment["spec"]["template"]["metadata"]["annotations"]
    assert pod["portico.dev/secrets-checksum"] == ""


def _instance_yaml(**spec: object) -> str:
    raw = yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    docs = [raw] if isinstance(raw, dict) else raw
    instance = next(d for d in docs if d.get("kind") == "PortalInstance")
    instance["spec"].update(spec)
    for key, value in spec.items():
        if value is None:
            del instance["spec"][key]
    return yaml.safe_dump(instance)


def test_an_insecure_instance_is_admitted_with_a_warning() -> None:
    result = plan("-", stdin=_instance_yaml(url="http://crm.test", insecure=True))
    assert result.returncode == 0, result.stderr
    assert "warning: portalinstance/contoso-crm: spec.insecure is true" in result.stderr


def test_an_instance_without_allowed_namespaces_allows_none() -> None:
    portal = (ROOT / "examples" / "customer-custom.yaml").read_text()
    result = plan("-", stdin=_instance_yaml(allowedNamespaces=None) + "---\n" + portal)
    assert result.returncode == 1
    assert "NamespaceNotAllowed" in result.stderr and "allows no namespace" in result.stderr
