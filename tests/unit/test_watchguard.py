"""The watch guard turns any failed Kopf watch stream into "list again" instead of an exit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import errors, watching

from portico.controller import watchguard


async def events_then(failure: BaseException, *events: Any) -> AsyncIterator[Any]:
    for event in events:
        yield event
    raise failure


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "failure",
    [
        watching.WatchingError("Error in the watch-stream: {'code': 500}"),
        errors.APIForbiddenError({"code": 403, "message": "forbidden"}, status=403, headers={}),
        errors.APIServerError({"code": 503}, status=503, headers={}),
        TimeoutError(),
    ],
    ids=["error-event", "403", "503", "timeout"],
)
async def test_a_failed_stream_ends_quietly_after_a_growing_backoff(
    failure: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(watchguard.asyncio, "sleep", sleep)
    monkeypatch.setattr(watchguard, "_failures", {})
    monkeypatch.setattr(
        watchguard, "_ORIGINAL", lambda **_: events_then(failure, {"type": "ADDED"})
    )
    got = [e async for e in watchguard.continuous_watch(resource="portals")]
    got += [e async for e in watchguard.continuous_watch(resource="portals")]
    assert got == [{"type": "ADDED"}, {"type": "ADDED"}]
    assert slept == [1.0, 2.0]  # in a row: longer each time

    listed = events_then(failure, watching.Bookmark.LISTED)
    monkeypatch.setattr(watchguard, "_ORIGINAL", lambda **_: listed)
    _ = [e async for e in watchguard.continuous_watch(resource="portals")]
    assert slept[-1] == 1.0  # a completed listing resets the backoff


def test_install_routes_kopf_through_the_guard() -> None:
    watchguard.install()
    assert watching.continuous_watch is watchguard.continuous_watch


@pytest.mark.asyncio
async def test_cancellation_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchguard, "_ORIGINAL", lambda **_: events_then(asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        _ = [e async for e in watchguard.continuous_watch(resource="portals")]
