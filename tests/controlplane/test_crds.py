"""The CRDs on a real API server: established, explained, printed, and admission parity.

Admission parity: every case in the shared corpus gets the same verdict from the
API server (server-side dry run) as the corpus says, with the same field path in
the message, and — for cases without an old object — the same as `portico plan`.
"""

from __future__ import annotations

import copy
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from portico.cli import main
from portico_dev import ControlPlane
from portico_dev.controlplane import default_crds_dir
from tests.support.corpus import Case, load_cases
from tests.support.tiers import skip_or_fail

GROUP = "portico.dev"
NAMESPACED = ("Portal", "PortalInvitation")
CASES = load_cases()


def _crds() -> dict[str, dict[str, Any]]:
    """Kind -> CRD document, from the repository's crds/."""
    found: dict[str, dict[str, Any]] = {}
    crds_dir = default_crds_dir()
    for path in sorted(crds_dir.glob("*.yaml")) if crds_dir else []:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                found[doc["spec"]["names"]["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> dict[str, dict[str, Any]]:
    found = _crds()
    if not {"Portal", "PortalInstance"} <= found.keys():
        skip_or_fail(f"crds/ does not define Portal and PortalInstance yet (found {sorted(found)})")
    return found


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_crds_are_established(control_plane: ControlPlane, crds: dict[str, Any]) -> None:
    for kind, crd in crds.items():
        name = crd["metadata"]["name"]
        status = control_plane.kubectl(
            "get",
            "crd",
            name,
            "-o",
            r"jsonpath={.status.conditions[?(@.type=='Established')].status}",
        ).stdout
        assert status == "True", f"{kind} ({name}) is not Established"
    scopes = {kind: crd["spec"]["scope"] for kind, crd in crds.items()}
    assert scopes["Portal"] == "Namespaced"
    assert scopes["PortalInstance"] == "Cluster"
    names = control_plane.kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").stdout
    assert re.search(r"^portals\s+ptl\s", names, re.MULTILINE), names


def test_explain_shows_field_descriptions(
    control_plane: ControlPlane, crds: dict[str, Any]
) -> None:
    out = _squash(control_plane.kubectl("explain", "portal.spec").stdout)
    spec = _schema(crds["Portal"])["properties"]["spec"]
    described = {
        field: prop["description"]
        for field, prop in spec["properties"].items()
        if prop.get("description")
    }
    assert "subdomain" in described, "spec.subdomain has no description in the CRD"
    for field, description in described.items():
        assert field in out
        assert _squash(description)[:60] in out, f"explain is missing the text for {field}"


def test_get_portals_prints_the_columns(
    control_plane: ControlPlane, crds: dict[str, Any], namespace: str
) -> None:
    portal = yaml.safe_load((Path(__file__).parents[1] / "cases" / "_bases.yaml").read_text())[
        "portal"
    ]
    portal["metadata"]["namespace"] = namespace
    control_plane.kubectl("create", "-f", "-", input=yaml.safe_dump(portal))
    header = control_plane.kubectl("get", "portals", "-n", namespace).stdout.splitlines()[0]
    assert header.split() == ["NAME", "PHASE", "URL", "TYPE", "TEMPLATE", "AGE"]
    wide = control_plane.kubectl("get", "ptl", "-n", namespace, "-o", "wide").stdout
    assert wide.splitlines()[0].split() == [
        "NAME",
        "PHASE",
        "URL",
        "TYPE",
        "TEMPLATE",
        "AGE",
        "REASON",
        "STATE",
        "MAINTENANCE",
    ]
    assert portal["metadata"]["name"] in wide


# -- admission parity ----------------------------------------------------------------


def _messages_along(schema: dict[str, Any], field: str) -> list[str]:
    """Static x-kubernetes-validations messages on the schema nodes from the root to `field`."""
    messages = []
    node: dict[str, Any] | None = schema
    for part in ["", *field.split(".")]:
        if node is None:
            break
        if part:
            node = node.get("properties", {}).get(part) or node.get("items", {}).get(
                "properties", {}
            ).get(part)
            if node is None:
                break
        messages += [
            _squash(r["message"])
            for r in node.get("x-kubernetes-validations", [])
            if "message" in r
        ]
    return messages


def _place(obj: dict[str, Any], kind: str, namespace: str) -> dict[str, Any]:
    placed = copy.deepcopy(obj)
    if kind in NAMESPACED:
        placed["metadata"]["namespace"] = namespace
    return placed


@pytest.fixture
def cleanup(control_plane: ControlPlane) -> Iterator[list[dict[str, Any]]]:
    """Objects a test created for real; deleted afterwards (the namespace is shared)."""
    created: list[dict[str, Any]] = []
    yield created
    for obj in created:
        namespace = obj["metadata"].get("namespace")
        control_plane.kubectl(
            "delete",
            obj["kind"].lower(),
            obj["metadata"]["name"],
            *(["-n", namespace] if namespace else []),
            "--ignore-not-found",
            check=False,
        )


@pytest.fixture(scope="module")
def parity_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """One namespace for every parity case: a namespace per case costs seconds each."""
    name = f"parity-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _admit(
    cp: ControlPlane, case: Case, namespace: str, created: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    obj = _place(case.obj, case.kind, namespace)
    if case.old is None:
        return cp.kubectl(
            "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj), check=False
        )
    old = _place(case.old, case.kind, namespace)
    cp.kubectl("create", "-f", "-", input=yaml.safe_dump(old))
    created.append(old)
    ns_args = ["-n", namespace] if case.kind in NAMESPACED else []
    # The operator may write the old object's status between the read and the replace
    # (a 409 on resourceVersion, not a verdict): read again and replace again.
    for _ in range(5):
        version = cp.kubectl(
            "get",
            case.kind.lower(),
            old["metadata"]["name"],
            *ns_args,
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ).stdout
        obj["metadata"]["resourceVersion"] = version
        result = cp.kubectl(
            "replace", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj), check=False
        )
        if "the object has been modified" not in result.stderr:
            break
    return result


def _plan(case: Case) -> subprocess.CompletedProcess[str]:
    """`portico plan` in-process (the console script itself is tested in tests/unit)."""
    # With cert-manager support on and the corpus's issuer allowed (its issuerRef cases are valid).
    result = CliRunner().invoke(
        main,
        ["plan", "-"],
        input=yaml.safe_dump_all(case.documents()),
        env={"PORTICO_CERT_MANAGER": "true", "PORTICO_ALLOWED_ISSUERS": "ClusterIssuer/le"},
    )
    return subprocess.CompletedProcess(["plan"], result.exit_code, result.stdout, result.stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_admission_parity(
    control_plane: ControlPlane,
    crds: dict[str, Any],
    parity_namespace: str,
    cleanup: list[dict[str, Any]],
    case: Case,
) -> None:
    result = _admit(control_plane, case, parity_namespace, cleanup)
    output = result.stdout + result.stderr
    if case.valid or not case.admission_checks:
        # Cross-checks need other objects, which admission cannot see: admitted.
        assert result.returncode == 0, f"the API server rejected a case it must admit:\n{output}"
    else:
        assert result.returncode != 0, "the API server admitted an invalid object"
        assert case.field in output, f"the rejection does not name {case.field}:\n{output}"
        if case.old is not None:
            messages = _messages_along(_schema(crds[case.kind]), case.field)
            if messages:
                assert any(m in _squash(output) for m in messages), output

    if case.old is not None:
        return  # `plan` sees no previous object; transition rules are admission-only
    planned = _plan(case)
    plan_output = planned.stdout + planned.stderr
    if case.valid:
        assert planned.returncode == 0, f"`portico plan` rejected a valid case:\n{plan_output}"
    else:
        assert planned.returncode == 1, f"`portico plan` exit {planned.returncode}:\n{plan_output}"
        assert case.expected in plan_output, plan_output
