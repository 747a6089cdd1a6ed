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
- news a person may act on — a condition that appears or turns False or
  Unknown — waits until `status_hold_seconds` after the last status write;
- progress toward Ready (a condition turning True, Ready's reason moving on)
  and wording (a message, a reason) wait until `DETAIL_HOLDS` times that: Ready
  itself is written at once, so on a slow machine a new portal still costs two
  status writes (its first, and Ready), not one per step;
- while many portals configure at once (a mass edit, a fleet rolled out), their
  progress is spread so that the fleet's progress writes stay near
  `FLEET_PROGRESS_PER_SECOND`: each portal's waits `configuring / rate` seconds,
  never longer than `PROGRESS_CAP`. A thousand portals rolling out together add
  no status write of their own to the API server that is rolling them out; news,
  failures and Ready are held no longer for it.
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
# Progress writes for the whole fleet, per second, when many portals configure at once;
# and the longest any portal's progress waits for that.
FLEET_PROGRESS_PER_SECOND = 1.0
PROGRESS_CAP = 600.0


def held_for(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    has_events: bool,
    written_at: datetime.datetime | None,
    hold_seconds: float,
    now: datetime.datetime,
    configuring: int = 0,
) -> float:
    """Seconds the change from OLD to NEW may wait before it is written; 0: write it now.
    CONFIGURING: how many portals the operator has in Configuring now."""
    if hold_seconds <= 0 or has_events or old == new or written_at is None:
        return 0.0
    if old.get("phase") != "Configuring" or new.get("phase") != "Configuring":
        return 0.0
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    if not changed <= PROGRESS or _attempt(old) != _attempt(new):
        return 0.0
    if reason_of(old, "Synced") != RECONCILE_SUCCESS:
        return 0.0
    hold = hold_seconds if _news(old, new) else progress_hold(hold_seconds, configuring)
    return max(hold - (now - written_at).total_seconds(), 0.0)


def progress_hold(hold_seconds: float, configuring: int) -> float:
    """How long progress waits after the last status write, with CONFIGURING portals
    configuring at once (see the module's docstring)."""
    alone = hold_seconds * DETAIL_HOLDS
    spread = min(configuring / FLEET_PROGRESS_PER_SECOND, PROGRESS_CAP)
    return max(alone, spread)


def _attempt(status: Mapping[str, Any]) -> Any:
    return (status.get("provisioning") or {}).get("attempt")


def _news(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A condition came, or turned to something other than True."""
    before = {c.get("type"): c.get("status") for c in old.get("conditions") or ()}
    after = {c.get("type"): c.get("status") for c in new.get("conditions") or ()}
    return any(status != "True" and before.get(kind) != status for kind, status in after.items())
