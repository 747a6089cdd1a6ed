"""A work queue of keys: deduplicated, delayed, one reconcile per key at a time.

Kopf delivers the events; this queue decides when each portal is reconciled,
so a burst of events (a child changing, the instance changing, a timer) costs
one reconcile, and a failing one is retried with backoff instead of sticking.
Due times live in a heap (stale entries are skipped), so taking the next key
costs O(log n) whatever the fleet's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("portico.queue")

Worker = Callable[[Hashable], Awaitable[float | None]]


class WorkQueue:
    def __init__(self, base_delay: float = 1.0, max_delay: float = 300.0) -> None:
        self._due: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        self._busy: set[Hashable] = set()
        # Added while busy: queued again when the running reconcile ends.
        self._again: dict[Hashable, float] = {}
        self._failures: dict[Hashable, int] = {}
        # A failed key is not retried before its backoff ends, however many events arrive.
        self._not_before: dict[Hashable, float] = {}
        self._wake = asyncio.Event()
        self.base_delay, self.max_delay = base_delay, max_delay
        self.running = False

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Reconcile KEY after DELAY seconds (sooner if it is already due sooner)."""
        when = max(time.monotonic() + max(delay, 0.0), self._not_before.get(key, 0.0))
        if key in self._busy:
            self._again[key] = min(when, self._again.get(key, when))
            return
        if key not in self._due or when < self._due[key]:
            self._due[key] = when
            heapq.heappush(self._heap, (when, next(self._order), key))
            self._wake.set()

    def forget(self, key: Hashable) -> None:
        """KEY is gone: no reconcile, no backoff, nothing kept."""
        self._due.pop(key, None)
        self._again.pop(key, None)
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._due or key in self._again

    def _next(self) -> tuple[Hashable | None, float]:
        now = time.monotonic()
        while self._heap:
            when, _, key = self._heap[0]
            if self._due.get(key) != when:
                heapq.heappop(self._heap)  # superseded by a sooner entry, or forgotten
                continue
            if when > now:
                return None, when - now
            heapq.heappop(self._heap)
            del self._due[key]
            return key, 0.0
        return None, 3600.0

    async def run(self, worker: Worker, concurrency: int = 4) -> None:
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        self.running = True
        try:
            while True:
                await slots.acquire()
                key, wait = self._next()
                if key is None:
                    slots.release()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    continue
                self._busy.add(key)
                task = asyncio.create_task(self._work(worker, key, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            self.running = False

    async def _work(self, worker: Worker, key: Hashable, slots: asyncio.Semaphore) -> None:
        requeue: float | None = None
        try:
            requeue = await worker(key)
            self._failures.pop(key, None)
            self._not_before.pop(key, None)
        except Exception as err:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            requeue = min(self.base_delay * 2 ** (count - 1), self.max_delay)
            log.warning("reconcile of %s failed (%s); retry %d in %.0fs", key, err, count, requeue)
            self._not_before[key] = time.monotonic() + requeue
        finally:
            self._busy.discard(key)
            slots.release()
            again = self._again.pop(key, None)
            if again is not None:
                self.add(key, again - time.monotonic())
            if requeue is not None:
                self.add(key, requeue)
            self._wake.set()
