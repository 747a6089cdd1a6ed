"""The background sender: drains one sink's queue, never on a page's critical path.

Per batch: one request with a timeout. 2xx: sent. Network errors, timeouts, 429 and 5xx:
tried again after an exponential back-off with full jitter (a 429's or 503's
Retry-After honoured), the same interactions and ids each time, counted `retried`.
401/403: tried again at once if the credentials on disk changed since they were sent,
else with back-off for up to `rotation_seconds` (the hub's key was rotated and the
Secret's new value is on its way): a rotation loses nothing. Any other 4xx, and 401/403
past that window: `rejected`, never retried (the hub will not take it later either).
A full queue drops its oldest (`dropped`); whatever is still queued when the
shutdown's grace period ends is `dropped` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import os
import random
import time
from dataclasses import dataclass

import httpx

from portico_runtime.interactions import model
from portico_runtime.interactions.metrics import Metrics
from portico_runtime.interactions.queue import DropOldest
from portico_runtime.interactions.sinks import Sink

log = logging.getLogger("portico_runtime.interactions")
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class Tuning:
    timeout: float = 10.0  # one request
    backoff: float = 0.5  # the first retry waits up to this long
    backoff_cap: float = 30.0
    flush_seconds: float = 20.0  # at shutdown; within the pod's 30 s grace period (5 s preStop)
    # A hub refusing our signature may have a new key that the mounted Secret does not show
    # yet (the kubelet syncs it within about a minute): wait this long before rejecting.
    rotation_seconds: float = 120.0

    @classmethod
    def from_env(cls) -> Tuning:
        def value(name: str, default: float) -> float:
            try:
                return float(os.environ.get(f"PORTICO_INTERACTIONS_{name}", default))
            except ValueError:
                return default

        return cls(
            timeout=value("TIMEOUT", cls.timeout),
            backoff=value("BACKOFF", cls.backoff),
            backoff_cap=value("BACKOFF_CAP", cls.backoff_cap),
            flush_seconds=value("FLUSH_SECONDS", cls.flush_seconds),
            rotation_seconds=value("ROTATION_SECONDS", cls.rotation_seconds),
        )


def retry_after(header: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return min(float(header), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - now), MAX_RETRY_AFTER)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap, base * 2**attempt))


class Sender:
    def __init__(
        self,
        sink: Sink,
        size: int,
        metrics: Metrics,
        client: httpx.AsyncClient,
        tuning: Tuning,
    ) -> None:
        self.sink, self.metrics, self.client, self.tuning = sink, metrics, client, tuning
        self.queue: DropOldest[model.Interaction] = DropOldest(size)
        self.deadline: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._unauthorized_since: float | None = None

    def put(self, interaction: model.Interaction) -> None:
        """Never waits: a page view goes on whatever the sink is doing."""
        dropped = self.queue.put(interaction)
        if dropped is not None:
            self._count([dropped], "dropped")
        self._depth()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"interactions-{self.sink.name}")

    async def drain(self, seconds: float) -> None:
        """Send what is queued for up to SECONDS, then count what is left as dropped."""
        self.deadline = time.monotonic() + seconds
        self.queue.close()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), seconds + 1.0)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        left = self.queue.drain_all()
        if left:
            self._count(left, "dropped")
            log.warning(
                "%d interactions for %s were not sent before shutdown", len(left), self.sink.name
            )
        self._depth()

    def _depth(self) -> None:
        self.metrics.depth.labels(sink=self.sink.name).set(len(self.queue))

    def _count(self, items: list[model.Interaction], outcome: str) -> None:
        for item in items:
            self.metrics.count(self.sink.name, item.type, outcome)

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    async def _run(self) -> None:
        while True:
            batch = await self.queue.take(self.sink.batch)
            self._depth()
            if not batch:
                return
            if not await self._deliver(batch):
                self._count(batch, "dropped")

    async def _deliver(self, batch: list[model.Interaction]) -> bool:
        """True once the batch was sent or rejected; False if shutdown's deadline came first."""
        attempt = 0
        while True:
            left = self._left()
            if left is not None and left <= 0:
                return False
            wait = await self._attempt(batch, left)
            if wait is None:
                return True
            self._count(batch, "retried")
            wait = (
                backoff(attempt, self.tuning.backoff, self.tuning.backoff_cap, self._rng)
                if wait < 0
                else wait
            )
            attempt += 1
            left = self._left()
            if left is not None:
                wait = min(wait, max(0.0, left))
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)

    async def _attempt(self, batch: list[model.Interaction], left: float | None) -> float | None:
        """One request. None: done (sent or rejected). Else how long to wait: -1 for back-off."""
        request = self.sink.request(batch)
        timeout = self.tuning.timeout if left is None else max(0.1, min(self.tuning.timeout, left))
        try:
            response = await self.client.post(
                request.url, content=request.content, headers=request.headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            log.info("%s unreachable (%s); will retry", self.sink.name, type(exc).__name__)
            return -1
        status = response.status_code
        if 200 <= status < 300:
            self._unauthorized_since = None
            self._count(batch, "sent")
            return None
        if status == 429 or status >= 500:
            after = retry_after(response.headers.get("retry-after"), time.time())
            return -1 if after is None else after
        if status in (401, 403):
            if self.sink.credentials_changed():
                return 0.0  # rotated credentials: at once, with the new ones
            now = time.monotonic()
            if self._unauthorized_since is None:
                self._unauthorized_since = now
            if now - self._unauthorized_since < self.tuning.rotation_seconds:
                return -1  # the new key may be on its way to the mounted file
        self._count(batch, "rejected")
        # The status only: a hub's answer could echo what we sent.
        log.warning("%s rejected %d interaction(s): HTTP %d", self.sink.name, len(batch), status)
        return None
