"""The shared case corpus: Portals with the verdict both `plan` and admission must give.

Each file under tests/cases/ is one YAML document:

    name: subdomain-uppercase        # unique, used as the test id
    verdict: valid | invalid
    stage: schema | cel | crosscheck # where an invalid case is caught
    field: spec.subdomain            # schema/cel: the field path the error must name
    reason: LanguageNotInstalled     # crosscheck: the reason the error must name
    old: {...Portal...}              # optional: an update from `old` to `portal`
    portal: {...Portal...}           # the object under test
    instances: [{...PortalInstance...}]  # optional, for cross-checks

Admission parity uses every case whose stage is not `crosscheck` (admission
cannot see other objects); `plan` uses them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Case:
    name: str
    verdict: str
    portal: dict[str, Any]
    stage: str = ""
    field: str = ""
    reason: str = ""
    old: dict[str, Any] | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    @property
    def admission_checks(self) -> bool:
        """True when the apiserver alone can give this verdict."""
        return self.stage != "crosscheck"


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        cases.append(Case(**doc))
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
