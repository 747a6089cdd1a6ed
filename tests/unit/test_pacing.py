"""Status pacing: progress within Configuring is batched (news — a condition that comes
or turns False — waits status_hold_seconds after the last write; progress toward Ready
and wording DETAIL_HOLDS times that); the rest is written at once (core/pacing.py,
through decide)."""

from __future__ import annotations

import copy
import datetime
from dataclasses import replace
from typing import Any

from portico.core import names
from portico.core.decide import Plan, decide, failed
from portico.core.observed import Observed
from portico.core.pacing import (
    DETAIL_HOLDS,
    FLEET_PROGRESS_PER_SECOND,
    PROGRESS_CAP,
    held_for,
    progress_hold,
)
from tests.support.worlds import NOW, SETTINGS, P, available, endpoints, owned, succeeded, world

LATER = NOW + datetime.timedelta(seconds=3)
STAMP = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
HOLD = SETTINGS.status_hold_seconds


def after(o: Observed, plan: Plan, job_done: bool = False, rolled_out: bool = False) -> Observed:
    """The world once the plan is written and the controllers moved on as told."""
    children = {**{k: copy.deepcopy(dict(v)) for k, v in o.children.items()}, **owned(plan)}
    if job_done:
        succeeded(children, names.provision_job_name(P, 1))
    if rolled_out:
        available(children)
    obj = copy.deepcopy(dict(o.obj))
    obj["status"] = plan.status
    obj["metadata"]["managedFields"] = [  # the first plan's status was written at NOW
        {"manager": "portico", "operation": "Update", "subresource": "status", "time": STAMP}
    ]
    return Observed(
        **{**o.__dict__, "obj": obj, "children": children, "endpoints": endpoints(children)}
    )


def condition(status: dict[str, Any], type_: str) -> tuple[str, str]:
    c = next(c for c in status["conditions"] if c["type"] == type_)
    return c["status"], c["reason"]


def test_a_new_generation_is_written_at_once() -> None:
    plan = decide(world(), SETTINGS, NOW)
    assert plan.status["observedGeneration"] == 1 and plan.phase == "Configuring"


def test_progress_within_configuring_waits_then_is_written_whole() -> None:
    first = decide(world(), SETTINGS, NOW)
    o = after(world(), first, job_done=True)
    held = decide(o, SETTINGS, LATER)
    assert held.phase == "Configuring"
    assert held.status == o.status  # nothing written yet: the Job's success waits
    # Progress toward Ready (Ready itself is written at once): the long hold.
    assert held.requeue_after == HOLD * DETAIL_HOLDS - 3
    assert decide(o, SETTINGS, NOW + datetime.timedelta(seconds=HOLD)).status == o.status
    due = decide(o, SETTINGS, NOW + datetime.timedelta(seconds=HOLD * DETAIL_HOLDS))
    assert due.status != o.status
    assert condition(due.status, "SolutionsInstalled") == ("True", "Installed")


def test_news_a_person_may_act_on_waits_only_the_short_hold() -> None:
    """A condition that comes or turns False is news: written HOLD after the last write."""
    old = {
        "phase": "Configuring",
        "conditions": [
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"},
            {"type": "RuntimeAvailable", "status": "True", "reason": "Available"},
        ],
    }
    turned = copy.deepcopy(old)
    turned["conditions"][1].update(status="False", reason="Unavailable")
    came = copy.deepcopy(old)
    came["conditions"].append({"type": "CustomDomainVerified", "status": "False"})
    for new in (turned, came):
        assert held_for(old, new, False, NOW, HOLD, LATER) == HOLD - 3
    assert held_for(turned, old, False, NOW, HOLD, LATER) == HOLD * DETAIL_HOLDS - 3


def test_many_portals_configuring_spread_their_progress_up_to_the_cap() -> None:
    alone = HOLD * DETAIL_HOLDS
    assert progress_hold(HOLD, 0) == progress_hold(HOLD, 5) == alone
    many = int(3 * alone * FLEET_PROGRESS_PER_SECOND)
    assert progress_hold(HOLD, many) == 3 * alone
    assert progress_hold(HOLD, 100_000) == PROGRESS_CAP


def test_a_mass_rollout_holds_progress_but_not_news_or_ready() -> None:
    """With a thousand portals configuring, a step toward Ready waits (the fleet's
    progress writes are spread); news still waits only the short hold, Ready none."""
    first = decide(world(), SETTINGS, NOW)
    o = replace(after(world(), first, job_done=True), configuring=1000)
    later = NOW + datetime.timedelta(seconds=HOLD * DETAIL_HOLDS)
    held = decide(o, SETTINGS, later)
    assert held.status == o.status  # alone it would be written now
    assert held.requeue_after == progress_hold(HOLD, 1000) - HOLD * DETAIL_HOLDS
    assert decide(replace(o, configuring=1), SETTINGS, later).status != o.status

    news = copy.deepcopy(dict(o.status))
    news["conditions"].append({"type": "CustomDomainVerified", "status": "False"})
    assert held_for(o.status, news, False, NOW, HOLD, LATER, 1000) == HOLD - 3

    done = replace(after(world(), first, job_done=True, rolled_out=True), configuring=1000)
    assert decide(done, SETTINGS, LATER).status["phase"] == "Ready"


def test_ready_is_written_at_once_whatever_was_held() -> None:
    first = decide(world(), SETTINGS, NOW)
    o = after(world(), first, job_done=True, rolled_out=True)
    # Everything done within the hold: Ready is written at once, with the portal's own
    # route (its Ingress) in the same plan.
    ready = decide(o, SETTINGS, LATER)
    assert ready.phase == "Ready" and ready.status["phase"] == "Ready"
    assert [e.reason for e in ready.events] == ["Ready"]
    assert ("Ingress", P) in owned(ready)


def test_a_failure_is_written_at_once() -> None:
    first = decide(world(), SETTINGS, NOW)
    o = after(world(), first)
    job = o.children[("Job", names.provision_job_name(P, 1))]
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "x"}]}
    failed = decide(o, SETTINGS, LATER)
    assert failed.phase == "Failed" and failed.status["phase"] == "Failed"


def test_no_hold_writes_every_step() -> None:
    first = decide(world(), SETTINGS, NOW)
    o = after(world(), first, job_done=True)
    every = decide(o, replace(SETTINGS, status_hold_seconds=0), LATER)
    assert condition(every.status, "SolutionsInstalled") == ("True", "Installed")


def test_recovery_from_a_failed_reconcile_is_written_at_once() -> None:
    first = decide(world(), SETTINGS, NOW)
    o = after(world(), first)
    status = copy.deepcopy(o.status)
    for c in status["conditions"]:
        if c["type"] == "Synced":
            c.update(status="False", reason="ReconcileError")
    o = after(o, replace(first, status=status), job_done=True)
    plan = decide(o, SETTINGS, LATER)
    assert condition(plan.status, "Synced") == ("True", "ReconcileSuccess")


def test_wording_only_waits_longer() -> None:
    first = decide(world(), SETTINGS, NOW)
    assert first.status["provisioning"]["state"] == "Running"  # created by this very plan
    o = after(world(), first)  # the Job and the Deployment are seen: only messages differ
    soon = decide(o, SETTINGS, NOW + datetime.timedelta(seconds=HOLD * 2))
    assert soon.status == o.status and soon.requeue_after == HOLD * (DETAIL_HOLDS - 2)
    due = decide(o, SETTINGS, NOW + datetime.timedelta(seconds=HOLD * DETAIL_HOLDS))
    assert due.status != o.status


def test_after_a_restart_the_first_change_is_written_at_once() -> None:
    first = decide(world(), SETTINGS, NOW)
    o = after(world(), first, job_done=True)
    del o.obj["metadata"]["managedFields"]  # a status no one wrote yet
    plan = decide(o, SETTINGS, LATER)
    assert condition(plan.status, "SolutionsInstalled") == ("True", "Installed")


def test_a_failed_first_write_never_says_the_job_runs() -> None:
    first = decide(world(), SETTINGS, NOW)  # would create the Job, then the write failed
    report = failed(world(), first, "the server said no", False, NOW)
    assert report.status["provisioning"]["state"] == "Pending"
    o = after(world(), first)  # the Job exists: then it does run
    assert failed(o, first, "no", False, NOW).status["provisioning"]["state"] == "Running"
