"""An external scanner agrees: Checkov over the chart's renderings and every example's children.

One Checkov run over one directory: the chart rendered with its defaults and each
`ci/*-values.yaml`, and `portico plan` of every example (portal NetworkPolicies on, as
the chart has them). Zero failed checks; every skip is an annotation in the manifest
that says why (core/scanner.py, charts/portico/templates/_checkov.tpl).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from portico.cli import main
from portico_dev import BinariesMissing
from portico_dev import binaries as devbinaries
from tests.support.tiers import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "portico"
CHECKOV = REPO / ".venv" / "checkov" / "bin" / "checkov"
# The checks Portico skips on purpose, each with its reason in the manifest.
ALLOWED_SKIPS = {"CKV_K8S_11", "CKV_K8S_15", "CKV_K8S_38", "CKV_K8S_40", "CKV_K8S_43", "CKV2_K8S_5"}
PLAN_ENV = {
    "PORTICO_PORTAL_NETWORK_POLICY": "true",
    "PORTICO_NETWORK_POLICY_INGRESS_NAMESPACES": "kubernetes.io/metadata.name=ingress-nginx",
}


def _helm() -> Path:
    try:
        return devbinaries.locate(("helm",))["helm"]
    except BinariesMissing as exc:
        skip_or_fail(f"helm is not built: {exc}")


PLANNED_KINDS = {"Portal", "PortalInstance", "PortalInvitation", "Namespace"}


def _manifests(directory: Path) -> int:
    """Write every manifest to scan into DIRECTORY; returns how many objects."""
    helm = _helm()
    count = 0
    for values in [None, *sorted((CHART / "ci").glob("*-values.yaml"))]:
        args = ["--values", str(values)] if values else []
        rendered = subprocess.run(
            [str(helm), "template", "portico", str(CHART), "--namespace", "portico-system", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        name = values.name.removesuffix(".yaml") if values else "defaults"
        (directory / f"chart-{name}.yaml").write_text(rendered)
        count += sum(1 for doc in yaml.safe_load_all(rendered) if doc)
    # What `portico plan` reads goes through it; anything else an example holds (a
    # maintenance page's ConfigMap) is the user's own object and is scanned as it is.
    examples, theirs = [], []
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if all(d.get("kind") in PLANNED_KINDS for d in docs):
            examples.append(str(path))
        else:
            theirs += docs
    (directory / "examples-users-own.yaml").write_text(yaml.safe_dump_all(theirs))
    count += len(theirs)
    result = CliRunner().invoke(main, ["plan", *examples, "-o", "json"], env=PLAN_ENV)
    assert result.exit_code == 0, result.output
    children = json.loads(result.stdout)
    assert {c["kind"] for c in children} >= {"Deployment", "Job", "NetworkPolicy", "Ingress"}
    (directory / "examples.yaml").write_text(yaml.safe_dump_all(children))
    return count + len(children)


def _scan(directory: Path) -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(f"{CHECKOV} is missing: `make install` makes it", pytrace=False)
    proc = subprocess.run(
        [
            *(str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "--compact"),
            *("--skip-download", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        # No network calls home: nothing is downloaded, nothing is reported.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_CREATE_GRAPH": "True"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_nothing_and_every_skip_says_why(tmp_path: Path) -> None:
    objects = _manifests(tmp_path)
    report = _scan(tmp_path)
    summary, results = report["summary"], report["results"]
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']} ({Path(f['file_path']).name})"
        for f in results["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert summary["parsing_errors"] == 0
    # Every object was read (Checkov counts the ones it has checks for), and checked.
    assert summary["resource_count"] >= objects * 0.8, (summary, objects)
    assert summary["passed"] > 1000
    skips = results["skipped_checks"]
    unexplained = [
        f"{s['check_id']} on {s['resource']}"
        for s in skips
        if (s["check_result"].get("suppress_comment") or "No comment provided")
        == "No comment provided"
    ]
    assert unexplained == []
    assert {s["check_id"] for s in skips} <= ALLOWED_SKIPS, Counter(s["check_id"] for s in skips)
