"""`portico plan` with PortalInvitations: admitted from the CRD, checked against the files'
Portals, and the link Secret it makes shown without its data (the code is made at run time)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.support.plan import plan

ROOT = Path(__file__).resolve().parents[2]
PORTAL = str(ROOT / "examples" / "customer-customerselfservice.yaml")
INSTANCE = str(ROOT / "examples" / "contoso-instance.yaml")
INVITATIONS = sorted(str(p) for p in (ROOT / "examples" / "invitations").glob("*.yaml"))


def test_the_example_invitations_plan_with_their_portal() -> None:
    assert len(INVITATIONS) == 2
    result = plan(INSTANCE, PORTAL, *INVITATIONS, "-o", "json")
    assert result.returncode == 0, result.stderr
    children = json.loads(result.stdout)
    links = [c for c in children if c["metadata"]["name"].endswith("-link")]
    assert sorted(c["metadata"]["name"] for c in links) == ["ann-lee-link", "fabrikam-team-link"]
    for link in links:
        assert link["kind"] == "Secret" and "data" not in link and "stringData" not in link
        assert link["metadata"]["labels"]["portico.dev/invitation"] in link["metadata"]["name"]
    assert "note: support/Secret/ann-lee-link: data.link (with the code)" in result.stderr


def test_an_invitation_alone_is_validated_too() -> None:
    result = plan(INVITATIONS[0], "-o", "table")
    assert result.returncode == 0, result.stderr
    assert "ann-lee-link" in result.stdout


def test_an_invitation_to_a_portal_not_in_the_files_is_named() -> None:
    doc = yaml.safe_load(Path(INVITATIONS[0]).read_text())
    doc["spec"]["portalRef"]["name"] = "no-such-portal"
    result = plan(PORTAL, "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "support/portalinvitation/ann-lee: PortalNotFound: no Portal no-such-portal in "
        "namespace support among the files"
    )


def test_an_invalid_invitation_names_the_field() -> None:
    doc = yaml.safe_load(Path(INVITATIONS[0]).read_text())
    doc["spec"]["maxRedemptions"] = 3  # a Single invitation
    result = plan("-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 1 and "spec.maxRedemptions" in result.stderr
    assert result.stdout == ""
