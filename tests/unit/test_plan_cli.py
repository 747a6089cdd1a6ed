"""`portico plan` as a user runs it: exit codes, one line per problem, output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from portico.cli import main
from tests.corpus import Case, load_cases

ROOT = Path(__file__).resolve().parents[2]
PORTICO = str(Path(sys.executable).with_name("portico"))
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))


def plan(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """In-process through click (fast); `test_console_script` covers the real binary."""
    result = CliRunner().invoke(
        main, ["plan", "--base-domain", "portals.example.com", *args], input=stdin
    )
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


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
        # -instance Secret, ConfigMap, Deployment, Service, Ingress, provisioning Job;
        # a translations Job for additional languages; a Certificate for issuerRef.
        expected += 6 + bool(spec.get("additionalLanguages")) + ("issuerRef" in tls)
    assert len(children) == expected
    kinds = {c["kind"] for c in children}
    assert {"Secret", "ConfigMap", "Deployment", "Service", "Ingress", "Job"} <= kinds
    # The credentials are copied by the operator, never rendered offline.
    secrets = [c for c in children if c["kind"] == "Secret"]
    assert all(s["data"] == {} for s in secrets if s["metadata"]["name"].endswith("-instance"))
    assert "# from the cluster: data copied from Secret portico-system/" in result.stdout


def test_output_formats() -> None:
    example = [
        str(ROOT / "examples" / "contoso-instance.yaml"),
        str(ROOT / "examples" / "customer-custom.yaml"),
    ]
    as_json = json.loads(plan(*example, "-o", "json").stdout)
    table = plan(*example, "-o", "table").stdout.splitlines()
    assert [c["kind"] for c in as_json] == [row.split()[0] for row in table[1:]]
    assert table[0].split() == ["KIND", "NAMESPACE", "NAME", "FROM", "THE", "CLUSTER"]
    assert "data copied from Secret portico-system/contoso-crm-credentials" in table[1]
    custom = plan(
        str(ROOT / "examples" / "contoso-instance.yaml"),
        str(ROOT / "examples" / "customer-customerselfservice.yaml"),
        "-o",
        "table",
    ).stdout
    assert "added once its CNAME is verified" in custom


INVALID = [c for c in load_cases() if not c.valid and c.old is None]


@pytest.mark.parametrize("case", INVALID, ids=[c.name for c in INVALID])
def test_invalid_case_exits_1_with_one_line_per_problem(case: Case) -> None:
    result = plan("-", stdin=yaml.safe_dump_all(case.documents()))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    name = case.obj["metadata"]["name"]
    prefix = (
        f"{case.obj['metadata'].get('namespace', '')}/{name}: "
        if case.kind == "Portal"
        else f"portalinstance/{name}: "
    )
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
        ("", "no Portal or PortalInstance"),
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
