"""Every case in the shared corpus gets its verdict from the offline admission and `plan`."""

from __future__ import annotations

import pytest

from portico.api import validation
from portico.cli import plan
from portico.settings import Settings
from tests.support.corpus import Case, load_cases

CASES = load_cases()
# With cert-manager support and the corpus's issuer allowed: its issuerRef portals are valid
# for such an operator (`portico plan` goes through decide(), which refuses them otherwise).
SETTINGS = Settings(
    base_domain="portals.example.com", cert_manager=True, allowed_issuers=("ClusterIssuer/le",)
)


def problems_for(case: Case) -> list[str]:
    if case.old is not None:
        _, problems = validation.admit(case.kind, case.obj, case.old)
        return [str(p) for p in problems]
    docs = plan.Documents()
    for doc in case.documents():
        if doc["kind"] == "Namespace":
            docs.namespace_labels[doc["metadata"]["name"]] = doc["metadata"]["labels"]
        else:
            {"Portal": docs.portals, "PortalInvitation": docs.invitations}.get(
                doc["kind"], docs.instances
            ).append(doc)
    return [p for v in plan.evaluate(docs, SETTINGS) for p in v.problems]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_verdict(case: Case) -> None:
    problems = problems_for(case)
    if case.valid:
        assert problems == []
    else:
        assert problems, f"{case.name} should be rejected"
        assert any(case.expected in p for p in problems), problems


def test_every_invalid_case_names_where_or_why() -> None:
    for case in CASES:
        if not case.valid:
            assert case.stage in ("schema", "cel", "crosscheck"), case.name
            assert bool(case.field) != bool(case.reason), case.name


def _declared_rules(kind: str) -> list[dict]:
    """Every x-kubernetes-validations rule in the CRD's schema."""
    out: list[dict] = []

    def walk(schema: dict) -> None:
        out.extend(schema.get("x-kubernetes-validations", []))
        for sub in schema.get("properties", {}).values():
            walk(sub)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"])

    walk(validation.crds.schema_for(kind))
    return out


def _reached_rules(kind: str, obj: dict) -> set[str]:
    """Rules whose field is present in OBJ (so a valid OBJ passes them for real)."""
    schema = validation.crds.schema_for(kind)
    defaulted = validation.apply_defaults(schema, obj)
    return {rule["rule"] for _, rule, _, _ in validation._rules(schema, defaulted, defaulted, [])}


def _message(rule: dict) -> str:
    return " ".join(rule["message"].split())


@pytest.mark.parametrize("kind", ["Portal", "PortalInstance", "PortalInvitation"])
def test_every_cel_rule_has_a_passing_and_a_failing_case(kind: str) -> None:
    rules = _declared_rules(kind)
    assert all(r.get("message") for r in rules), "every rule needs a human message"
    reached = set().union(
        *(_reached_rules(kind, c.obj) for c in CASES if c.valid and c.kind == kind)
    )
    assert {r["rule"] for r in rules} <= reached
    broken = {
        _message(r)
        for c in CASES
        if c.kind == kind and c.stage == "cel"
        for r in rules
        if any(_message(r) in p for p in problems_for(c))
    }
    assert {_message(r) for r in rules} == broken
