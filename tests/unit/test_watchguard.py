"""The watch guard turns any failed Kopf watch stream into "list again" instead of an exit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import errors, watching
from kopf._cogs.configs import configuration
from kopf._cogs.structs import references

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


@pytest.mark.asyncio
async def test_install_routes_kopf_through_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kopf's own watch loop (`infinite_watch`), given a stream that fails with an ERROR
    event: with the guard installed it lists again; without, the error would end it."""
    failure = watching.WatchingError("Error in the watch-stream: {'code': 500}")

    def failing_stream(**_: Any) -> AsyncIterator[Any]:
        return events_then(failure, {"type": "ADDED"})

    # Kopf's stream, as the guard finds it: one event, then an ERROR event.
    monkeypatch.setattr(watching, "continuous_watch", failing_stream)
    monkeypatch.setattr(watchguard, "_ORIGINAL", failing_stream)
    monkeypatch.setattr(watchguard, "_failures", {})
    monkeypatch.setattr(watchguard.asyncio, "sleep", _no_sleep)
    resource = references.Resource(group="portico.dev", version="v1alpha1", plural="portals")

    def kopf_watch() -> AsyncIterator[Any]:
        return watching.infinite_watch(
            settings=configuration.OperatorSettings(),
            resource=resource,
            namespace=None,
            _iterations=2,  # two streams, where Kopf would go on forever
        )

    with pytest.raises(watching.WatchingError):  # Kopf alone: the first failure ends it
        _ = [e async for e in kopf_watch()]
    watchguard.install()
    got = [e async for e in kopf_watch()]
    assert got == [{"type": "ADDED"}, {"type": "ADDED"}]  # it went on to a second stream


async def _no_sleep(delay: float) -> None:
    return None


@pytest.mark.asyncio
async def test_cancellation_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchguard, "_ORIGINAL", lambda **_: events_then(asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        _ = [e async for e in watchguard.continuous_watch(resource="portals")]
