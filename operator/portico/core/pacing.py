"""When a status change may wait (pure): progress within Configuring is written at most
every `status_hold_seconds`, everything else at once.

A new portal passes through several truthful states on its way to Ready
(provisioned, rolled out, routed), each seconds apart; writing each one is a
status patch the API server stores and sends to every watcher. Holding such a
step back never makes status say more than is true: it says less, for a few
seconds, and the next write carries the newest state. Written at once: the
first status of a generation, any phase change (Ready, Failed, Expired), any
change that comes with an Event, a recovery from a failed reconcile, and
anything outside the conditions.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from portico.core import names
from portico.core.conditions import reason_of
from portico.core.reasons import RECONCILE_SUCCESS

# What a held write may differ in: the conditions and the running attempt's progress.
PROGRESS = frozenset({"conditions", "provisioning"})


def held_for(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    has_events: bool,
    hold_seconds: float,
    now: datetime.datetime,
) -> float:
    """Seconds the change from OLD to NEW may wait before it is written; 0: write it now."""
    if hold_seconds <= 0 or has_events or old == new:
        return 0.0
    if old.get("phase") != "Configuring" or new.get("phase") != "Configuring":
        return 0.0
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    if not changed <= PROGRESS or _attempt(old) != _attempt(new):
        return 0.0
    if reason_of(old, "Synced") != RECONCILE_SUCCESS:
        return 0.0
    last = _last_transition(old)
    if last is None:
        return 0.0
    waited = (now - last).total_seconds()
    return max(hold_seconds - waited, 0.0)


def _attempt(status: Mapping[str, Any]) -> Any:
    return (status.get("provisioning") or {}).get("attempt")


def _last_transition(status: Mapping[str, Any]) -> datetime.datetime | None:
    """When a condition last changed: the last time progress was written."""
    stamps = [c.get("lastTransitionTime") for c in status.get("conditions") or ()]
    times = [names.parse_time(s) for s in stamps if s]
    return max(times) if times else None
