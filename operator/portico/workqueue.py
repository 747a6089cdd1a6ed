"""A work queue of portal keys: deduplicated, delayed, one reconcile per key at a time.

Kopf delivers the events; this queue decides when each portal is reconciled,
so a burst of events (a child changing, the instance changing, a timer) costs
one reconcile, and a failing one is retried with backoff instead of sticking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("portico.queue")

Worker = Callable[[Hashable], Awaitable[float | None]]


class WorkQueue:
    def __init__(self, base_delay: float = 1.0, max_delay: float = 300.0) -> None:
        self._due: dict[Hashable, float] = {}
        self._busy: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        # A failed key is not retried before its backoff ends, however many events arrive.
        self._not_before: dict[Hashable, float] = {}
        self._wake = asyncio.Event()
        self.base_delay, self.max_delay = base_delay, max_delay

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Reconcile KEY after DELAY seconds (sooner if it is already due sooner)."""
        when = max(time.monotonic() + max(delay, 0.0), self._not_before.get(key, 0.0))
        if key not in self._due or when < self._due[key]:
            self._due[key] = when
            self._wake.set()

    def __len__(self) -> int:
        return len(self._due)

    def _next(self) -> tuple[Hashable | None, float]:
        now, soonest = time.monotonic(), None
        for key, when in self._due.items():
            if key in self._busy:
                continue
            if when <= now:
                return key, 0.0
            soonest = when if soonest is None else min(soonest, when)
        return None, (soonest - now) if soonest is not None else 3600.0

    async def run(self, worker: Worker, concurrency: int = 4) -> None:
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            key, wait = self._next()
            if key is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            await slots.acquire()
            del self._due[key]
            self._busy.add(key)
            task = asyncio.create_task(self._work(worker, key, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _work(self, worker: Worker, key: Hashable, slots: asyncio.Semaphore) -> None:
        try:
            requeue = await worker(key)
            self._failures.pop(key, None)
            self._not_before.pop(key, None)
            if requeue is not None:
                self.add(key, requeue)
        except Exception as err:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            delay = min(self.base_delay * 2 ** (count - 1), self.max_delay)
            log.warning("reconcile of %s failed (%s); retry %d in %.0fs", key, err, count, delay)
            self._not_before[key] = time.monotonic() + delay
            self._due.pop(key, None)  # an event during the failed run must not cut the backoff
            self.add(key, delay)
        finally:
            self._busy.discard(key)
            slots.release()
            self._wake.set()
