"""Phase and Ready from the aspect conditions."""

from __future__ import annotations

from portico.core.claims import Claimant, owner
from portico.core.conditions import false, summarize, to_status, true


def test_ready_only_when_every_condition_is_true() -> None:
    phase, ready = summarize(
        [true("InstanceLinked", "Linked"), true("RuntimeAvailable", "Available")]
    )
    assert (phase, ready.status) == ("Ready", "True")


def test_user_errors_fail_and_waiting_configures() -> None:
    waiting = [true("InstanceLinked", "Linked"), false("SolutionsInstalled", "Installing", "...")]
    assert summarize(waiting)[0] == "Configuring"
    broken = [*waiting, false("AnalyticsConfigured", "SecretNotFound", "Secret x is missing")]
    phase, ready = summarize(broken)
    assert (phase, ready.reason, ready.message) == (
        "Failed",
        "SecretNotFound",
        "Secret x is missing",
    )


def test_paused_and_expired_win() -> None:
    assert summarize([false("InstanceLinked", "InstanceNotFound", "x")], paused=True)[0] == "Paused"
    assert summarize([], expired=True)[1].reason == "Expired"


def test_blocker_explains_ready() -> None:
    phase, ready = summarize([], blocker=false("Ready", "SubdomainTaken", "taken by a/b"))
    assert (phase, ready.reason) == ("Failed", "SubdomainTaken")


def test_transition_time_moves_only_with_status() -> None:
    first = to_status([false("Ready", "Installing", "")], [], 1, "T0")
    same = to_status([false("Ready", "Deploying", "")], first, 2, "T1")
    assert same[0]["lastTransitionTime"] == "T0" and same[0]["observedGeneration"] == 2
    flipped = to_status([true("Ready", "Ready")], same, 2, "T2")
    assert flipped[0]["lastTransitionTime"] == "T2"


def test_older_claim_wins_with_name_as_tie_break() -> None:
    a = Claimant("2026-01-02T00:00:00Z", "ns1", "a", subdomain="shop")
    b = Claimant("2026-01-01T00:00:00Z", "ns2", "b", subdomain="shop")
    c = Claimant("2026-01-01T00:00:00Z", "ns1", "c", subdomain="shop")
    assert owner([a, b, c], "shop", "subdomain") == c
    assert owner([a], "other", "subdomain") is None
