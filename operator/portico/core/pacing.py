"""When a status change may wait (pure): progress within Configuring is batched, the rest
is written at once.

A new portal passes through many truthful states on its way to Ready (the Job
created, the Deployment seen, its replicas updated, then available, the Job
done, the Service switched), often seconds apart; each write is a status patch
the API server stores and sends to every watcher. Holding a step back never
makes status say more than is true: it says less, for a bounded time, and the
next write carries the newest state.

- written at once: the first status of a generation, a phase change (Ready,
  Failed, Expired), a change that comes with an Event, a recovery from a failed
  reconcile, and anything outside the conditions and the attempt's progress;
- a condition turning True or False, or the Ready condition's reason changing,
  waits until `status_hold_seconds` after the last status write;
- a change of wording only (a message, or the reason of a condition that does
  not explain Ready) waits until `DETAIL_HOLDS` times that.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from portico.core.conditions import reason_of
from portico.core.reasons import RECONCILE_SUCCESS

# What a held write may differ in: the conditions and the running attempt's progress.
PROGRESS = frozenset({"conditions", "provisioning"})
DETAIL_HOLDS = 6


def held_for(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    has_events: bool,
    written_at: datetime.datetime | None,
    hold_seconds: float,
    now: datetime.datetime,
) -> float:
    """Seconds the change from OLD to NEW may wait before it is written; 0: write it now."""
    if hold_seconds <= 0 or has_events or old == new or written_at is None:
        return 0.0
    if old.get("phase") != "Configuring" or new.get("phase") != "Configuring":
        return 0.0
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    if not changed <= PROGRESS or _attempt(old) != _attempt(new):
        return 0.0
    if reason_of(old, "Synced") != RECONCILE_SUCCESS:
        return 0.0
    hold = hold_seconds if _turned(old, new) else hold_seconds * DETAIL_HOLDS
    return max(hold - (now - written_at).total_seconds(), 0.0)


def _attempt(status: Mapping[str, Any]) -> Any:
    return (status.get("provisioning") or {}).get("attempt")


def _turned(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A condition came, went or turned, or Ready explains itself differently."""
    before = {c.get("type"): c.get("status") for c in old.get("conditions") or ()}
    after = {c.get("type"): c.get("status") for c in new.get("conditions") or ()}
    return before != after or reason_of(old, "Ready") != reason_of(new, "Ready")
