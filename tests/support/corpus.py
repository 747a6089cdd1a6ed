"""The shared case corpus: Portals with the verdict both `plan` and admission must give.

`tests/cases/_bases.yaml` holds a valid Portal (`portal`) and PortalInstance
(`instance`). Every other file under tests/cases/ is a YAML list of cases:

    - name: subdomain-uppercase          # unique, the test id
      verdict: valid | invalid
      stage: schema | cel | crosscheck   # where an invalid case is caught
      field: spec.subdomain              # schema/cel: the path the error names
      reason: LanguageNotInstalled       # crosscheck: the reason the error names
      kind: Portal                       # or PortalInstance (the object under test)
      patch: {spec: {subdomain: Bad}}    # JSON merge patch over the base object
      old_patch: {...}                   # optional: an update from base+old_patch
      instance_patch: {...}              # optional: merge patch over the base instance
      instances: []                      # optional: replaces the instance list
      namespaces: {support: {team: a}}   # optional: namespace labels for selectors

Admission parity uses every case whose stage is not `crosscheck` (admission
cannot see other objects) and expects crosscheck cases to be admitted; `plan`
uses every case without `old_patch` (it sees no previous object).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).resolve().parents[1] / "cases"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    verdict: str
    obj: dict[str, Any]
    kind: str = "Portal"
    stage: str = ""
    field: str = ""
    reason: str = ""
    old: dict[str, Any] | None = None
    instances: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    @property
    def admission_checks(self) -> bool:
        """True when the API server alone gives this verdict."""
        return self.stage != "crosscheck"

    @property
    def expected(self) -> str:
        """What an error for this case must mention: its field path or its reason."""
        return self.reason or self.field

    def documents(self) -> list[dict[str, Any]]:
        """Everything `portico plan` is given for this case."""
        namespaces = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
            for n, labels in self.namespaces.items()
        ]
        return [*namespaces, *self.instances, self.obj]


def _case(raw: dict[str, Any], bases: dict[str, Any]) -> Case:
    kind = raw.pop("kind", "Portal")
    base = bases["portal" if kind == "Portal" else "instance"]
    patch = raw.pop("patch", {})
    old_patch = raw.pop("old_patch", None)
    instance_patch = raw.pop("instance_patch", None)
    instances = raw.pop("instances", None)
    if instances is None:
        instances = (
            [merge_patch(bases["instance"], instance_patch or {})] if kind == "Portal" else []
        )
    return Case(
        kind=kind,
        obj=merge_patch(base, patch),
        old=merge_patch(base, old_patch) if old_patch is not None else None,
        instances=instances,
        **raw,
    )


def load_cases() -> list[Case]:
    bases = yaml.safe_load((CASES_DIR / "_bases.yaml").read_text())
    cases = []
    for path in sorted(CASES_DIR.glob("[!_]*.yaml")):
        cases.extend(_case(raw, bases) for raw in yaml.safe_load(path.read_text()))
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
