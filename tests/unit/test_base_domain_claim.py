"""Two releases must not share a base domain: the claim the operator judges at start."""

from __future__ import annotations

from typing import Any

import pytest

from portico.core.base_domain import RELEASE_ANNOTATION, refusal
from portico.settings import Settings, SettingsError

POLICY = "portico-hosts.portals.acme.io"


def policy(holder: str | None) -> dict[str, Any]:
    annotations = {} if holder is None else {RELEASE_ANNOTATION: holder}
    return {"metadata": {"name": POLICY, "annotations": annotations}}


def test_its_own_release_may_start() -> None:
    assert refusal(policy("portico-system/portico"), POLICY, "portico-system/portico", "x") is None


def test_another_release_holding_the_base_domain_is_named() -> None:
    why = refusal(policy("team-a/portico"), POLICY, "team-b/portico", "portals.acme.io")
    assert why is not None
    assert "base domain portals.acme.io is held by release team-a/portico" in why
    assert POLICY in why and "give release team-b/portico another baseDomain" in why


def test_a_policy_no_release_made_is_refused_too() -> None:
    why = refusal(policy(None), POLICY, "team-b/portico", "portals.acme.io")
    assert why is not None and "not made by a Portico release" in why


def test_a_missing_claim_says_how_to_fix_it() -> None:
    why = refusal(None, POLICY, "team-b/portico", "portals.acme.io")
    assert why is not None
    assert "does not exist" in why and "hostPolicy.enabled=false" in why


def test_the_release_is_required_with_the_policy() -> None:
    with pytest.raises(SettingsError, match="PORTICO_RELEASE"):
        Settings.from_env({"PORTICO_HOST_POLICY": POLICY})
    settings = Settings.from_env({"PORTICO_HOST_POLICY": POLICY, "PORTICO_RELEASE": "ns/rel"})
    assert (settings.host_policy, settings.release) == (POLICY, "ns/rel")
    assert Settings.from_env({}).host_policy == ""  # a local run checks nothing
