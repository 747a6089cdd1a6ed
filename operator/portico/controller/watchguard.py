"""Keep Kopf's watches alive through any failure: list again and go on.

Kopf (1.45) restarts a watch only on `410 Gone`; any other ERROR event in a
watch stream raises `WatchingError`, and an API error that outlasts its
retries (403 after a permission is revoked, 5xx while the API server or etcd
restarts) escapes the same way. Either ends the whole operator. Kopf has no
setting for this, so its stream is wrapped: a failed stream is logged, waited
out with a growing backoff, and ends quietly; Kopf's own outer loop then
starts a fresh stream, which lists everything again (no event is lost: the
list re-delivers every object) and watches on from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from kopf._cogs.clients import errors, watching

log = logging.getLogger("portico.watch")
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
_ORIGINAL = watching.continuous_watch
# Failed streams in a row, per resource (reset once a listing completes).
_failures: dict[str, int] = {}


def describe(err: BaseException) -> str:
    """What failed, without the body of any object (a Secret's data must not reach a log)."""
    if isinstance(err, watching.WatchingError):
        return "an ERROR event in the watch stream"
    if isinstance(err, errors.APIError):
        return f"HTTP {err.status}"
    return type(err).__name__


async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
    resource = str(kwargs.get("resource"))
    try:
        async for event in _ORIGINAL(**kwargs):
            if event is watching.Bookmark.LISTED:
                _failures.pop(resource, None)
            yield event
    except (
        watching.WatchingError,
        errors.APIError,
        aiohttp.ClientError,
        TimeoutError,
    ) as err:
        count = _failures.get(resource, 0)
        _failures[resource] = count + 1
        delay = BACKOFF[min(count, len(BACKOFF) - 1)]
        log.warning(
            "watch of %s failed (%s); listing again in %.0fs", resource, describe(err), delay
        )
        await asyncio.sleep(delay)


def install() -> None:
    """Route Kopf's watch streams through the guard (idempotent)."""
    watching.continuous_watch = continuous_watch
