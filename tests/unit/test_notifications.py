"""Which notifications are due (core/notifications.py), and decide's record of them.

No cluster: the due-decision is pure. Thresholds (7 days and 1 day before a trial ends),
once per occurrence, conversion, stop and start, the certificate, and the webhook's
signature as a receiver checks it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from portico.controller.act import merge_patch
from portico.core import notifications as n
from portico.core.decide import Plan, decide
from tests.support.worlds import NOW, SETTINGS, P, portal_obj, world

DAY = datetime.timedelta(days=1)
EXPIRY = NOW + 30 * DAY


def _args(
    now: datetime.datetime, old: dict[str, Any], new: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    """n.due's arguments: a trial portal at generation 3, running, unless KW says else."""
    args: dict[str, Any] = {
        "portal": "web",
        "trial": True,
        "expiry": EXPIRY,
        "now": now,
        "old": old,
        "new": new,
        "generation": 3,
        "running": True,
    }
    return {**args, **kw}


def due(now: datetime.datetime, old: dict[str, Any], new: dict[str, Any], **kw: Any) -> list[str]:
    return [x.slot for x in n.due(**_args(now, old, new, **kw))]


def recorded(
    now: datetime.datetime, old: dict[str, Any], new: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    """OLD with what NOW makes due recorded, as decide writes it."""
    out = {**new}
    n.record(out, old, n.due(**_args(now, old, new, **kw)), {}, ("email",), "2026-01-01T00:00:00Z")
    return out


def test_trial_notices_at_seven_days_then_one_day_each_once() -> None:
    status: dict[str, Any] = {"phase": "Ready"}
    assert due(EXPIRY - 8 * DAY, status, status) == []
    week = EXPIRY - 7 * DAY + datetime.timedelta(seconds=1)
    assert due(week, status, status) == ["TrialExpiringSoon-7d"]
    status = recorded(week, status, status)
    assert status["notifications"]["TrialExpiringSoon-7d"]["email"] == "Queued"
    # Once only: the record holds this trial's end.
    assert due(week + DAY, status, status) == []
    last = EXPIRY - DAY + datetime.timedelta(minutes=1)
    assert due(last, status, status) == ["TrialExpiringSoon-1d"]
    status = recorded(last, status, status)
    assert due(last + datetime.timedelta(hours=1), status, status) == []
    message = status["notifications"]["TrialExpiringSoon-1d"]["message"]
    assert "expires in 24 hours" in message or "expires in 23 hours" in message


def test_a_short_trial_gets_only_the_nearest_notice() -> None:
    # Both thresholds were crossed before the first look (a 5-day trial, or an operator
    # that was away): one notice, the 1-day one; the 7-day one never comes after it.
    now = EXPIRY - datetime.timedelta(hours=5)
    assert due(now, {}, {"phase": "Ready"}) == ["TrialExpiringSoon-1d"]
    status = recorded(now, {}, {"phase": "Ready"})
    assert due(now + datetime.timedelta(hours=1), status, status) == []


def test_next_threshold_is_when_a_reconcile_comes_back() -> None:
    assert n.next_in(True, EXPIRY, EXPIRY - 10 * DAY) == 3 * DAY.total_seconds() + 1
    assert n.next_in(True, EXPIRY, EXPIRY - 3 * DAY) == 2 * DAY.total_seconds() + 1
    assert n.next_in(True, EXPIRY, EXPIRY - datetime.timedelta(hours=1)) is None
    assert n.next_in(False, EXPIRY, NOW) is None


def test_expiry_is_notified_on_the_transition_once() -> None:
    old = {"phase": "Ready", "trialExpiresAt": "x"}
    assert due(EXPIRY, old, {"phase": "Expired"}) == ["TrialExpired"]
    status = recorded(EXPIRY, old, {"phase": "Expired"})
    # Expired → Paused → Expired again: the same trial end, not notified twice.
    assert due(EXPIRY + DAY, {**status, "phase": "Paused"}, {"phase": "Expired"}) == []


def test_conversion_is_notified_once_and_ends_the_trial_notices() -> None:
    old = {"phase": "Expired", "trialExpiresAt": "2026-12-30T12:00:00Z"}
    assert due(EXPIRY + DAY, old, {"phase": "Ready"}, trial=False, expiry=None) == [
        "TrialConverted"
    ]
    status = recorded(EXPIRY + DAY, old, {"phase": "Ready"}, trial=False, expiry=None)
    assert "trialExpiresAt" not in status
    assert due(EXPIRY + 2 * DAY, status, status, trial=False, expiry=None) == []
    # A Production portal never had a trial: nothing.
    assert due(NOW, {"phase": "Ready"}, {"phase": "Ready"}, trial=False, expiry=None) == []


def test_stop_and_start_are_notified_per_generation() -> None:
    stopped = recorded(NOW, {"phase": "Ready"}, {"phase": "Stopped"}, generation=4)
    assert stopped["notifications"]["Stopped"]["key"] == "4"
    assert due(NOW, stopped, {"phase": "Stopped"}, generation=4) == []
    assert due(NOW, stopped, {"phase": "Configuring"}, generation=5) == ["Started"]
    # Deprovisioned from Stopped is not a start.
    assert due(NOW, stopped, {"phase": "Deprovisioned"}, generation=5, running=False) == []
    started = recorded(NOW, stopped, {"phase": "Ready"}, generation=5)
    # Stopped again later: a new occurrence (a new generation) is notified again.
    assert due(NOW, started, {"phase": "Stopped"}, generation=6) == ["Stopped"]


def test_certificate_expiring_once_per_certificate() -> None:
    cond = {"type": "CertificateReady", "reason": "CertificateExpiringSoon", "message": "soon"}
    new = {"phase": "Ready", "conditions": [cond], "certificate": {"notAfter": "2027-01-01"}}
    assert due(NOW, {"phase": "Ready"}, new, trial=False) == ["CertificateExpiringSoon"]
    status = recorded(NOW, {"phase": "Ready"}, new, trial=False)
    assert due(NOW, status, new, trial=False) == []
    renewed = {**new, "certificate": {"notAfter": "2027-04-01"}}
    assert due(NOW, status, renewed, trial=False) == ["CertificateExpiringSoon"]


def _trial_world(created: datetime.datetime, status: dict[str, Any] | None = None) -> Any:
    obj = portal_obj(type="Trial")
    obj["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return world(obj=obj, status=status)


def test_decide_posts_the_event_and_records_it_in_the_same_status() -> None:
    # SETTINGS' trial is 30 days: created 23 days ago, it ends in 7.
    settings = dataclasses.replace(SETTINGS, notification_email=True)
    created = NOW - 23 * DAY - datetime.timedelta(seconds=1)
    plan = decide(_trial_world(created, {"phase": "Ready"}), settings, NOW)
    events = [e.reason for e in plan.events]
    assert events.count("TrialExpiringSoon") == 1
    entry = plan.status["notifications"]["TrialExpiringSoon-7d"]
    assert entry["email"] == "Queued" and "webhook" not in entry
    # The next decide, with that status: no second Event, the record carried on as is.
    later = NOW + datetime.timedelta(hours=1)
    again = decide(_trial_world(created, _status(plan)), settings, later)
    assert "TrialExpiringSoon" not in [e.reason for e in again.events]
    assert again.status["notifications"] == plan.status["notifications"]


def _status(plan: Plan) -> dict[str, Any]:
    return copy.deepcopy(plan.status)


def test_decide_comes_back_at_the_next_threshold() -> None:
    o = _trial_world(NOW - DAY)  # ends in 29 days: the 7-day notice is due in 22
    plan = decide(o, SETTINGS, NOW)
    assert plan.requeue_after == 22 * DAY.total_seconds() + 1
    assert "notifications" not in plan.status  # nothing due: no record, no write


def test_without_a_channel_the_record_keeps_only_the_once() -> None:
    o = _trial_world(NOW - 29 * DAY - datetime.timedelta(hours=1), {"phase": "Ready"})
    plan = decide(o, SETTINGS, NOW)
    entry = plan.status["notifications"]["TrialExpiringSoon-1d"]
    assert "email" not in entry and "webhook" not in entry
    assert n.queued(plan.status) == []


def test_converted_portal_has_an_event() -> None:
    obj = portal_obj(type="Production")
    o = world(obj=obj, status={"phase": "Expired", "trialExpiresAt": "2026-11-01T00:00:00Z"})
    plan = decide(o, SETTINGS, NOW)
    assert "TrialConverted" in [e.reason for e in plan.events]
    assert plan.status["notifications"]["TrialConverted"]["key"] == "2026-11-01T00:00:00Z"
    assert P in plan.status["notifications"]["TrialConverted"]["message"]


def test_the_signature_a_receiver_checks() -> None:
    key, body = b"k" * 32, b'{"reason":"Stopped"}'
    header = n.signature(key, 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert n.verify(key, header, body, now=1_700_000_010)
    assert not n.verify(key, header, body + b" ", now=1_700_000_010)
    assert not n.verify(b"other", header, body, now=1_700_000_010)
    assert not n.verify(key, header, body, now=1_700_001_000)  # an old replay


def test_status_patches_merge_the_record_entry_by_entry() -> None:
    # The outbox marks entry A while a reconcile adds entry B: neither patch carries the
    # other's stale copy of an entry it did not change.
    old = {"phase": "Ready", "notifications": {"A": {"key": "1", "email": "Queued"}}}
    marked = copy.deepcopy(old)
    marked["notifications"]["A"]["email"] = "Sent"
    assert merge_patch(old, marked) == {"notifications": {"A": {"email": "Sent"}}}
    added = copy.deepcopy(old)
    added["notifications"]["B"] = {"key": "2", "email": "Queued"}
    assert merge_patch(old, added) == {"notifications": {"B": {"key": "2", "email": "Queued"}}}
    # Elsewhere too, a key gone at any depth is removed, nothing else named.
    assert merge_patch({"certificate": {"a": 1, "b": 2}}, {"certificate": {"a": 1}}) == {
        "certificate": {"b": None}
    }
