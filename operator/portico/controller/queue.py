"""A work queue of keys: deduplicated, delayed, one reconcile per key at a time.

Kopf delivers the events; this queue decides when each portal is reconciled,
so a burst of events (a child changing, the instance changing, a timer) costs
one reconcile, and a failing one is retried with backoff instead of sticking.
Due times live in a heap (stale entries are skipped), so taking the next key
costs O(log n) whatever the fleet's size.

Work is urgent (an event: someone or something changed) or routine (the pass
over every portal after a start, the periodic resync). Routine work runs only
when nothing urgent is due, and a few keys at a time: a pass over thousands of
unchanged portals is CPU in reconcile threads, and with many of them the watch
handlers in the event loop would wait their turn for the interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger("portico.queue")

ROUTINE_SLOTS = 2


@dataclass(frozen=True)
class Again:
    """Reconcile again AFTER seconds; ROUTINE: nothing asked for it (a resync)."""

    after: float
    routine: bool = False


Worker = Callable[[Hashable], Awaitable[float | Again | None]]


class WorkQueue:
    def __init__(self, base_delay: float = 1.0, max_delay: float = 300.0) -> None:
        self._due: dict[Hashable, float] = {}
        # One heap per lane; a key's entry is live in the lane _routine says.
        self._heap: list[tuple[float, int, Hashable]] = []
        self._routine_heap: list[tuple[float, int, Hashable]] = []
        self._routine: set[Hashable] = set()
        self._routine_running = 0
        self.routine_slots = ROUTINE_SLOTS
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

    def add(self, key: Hashable, delay: float = 0.0, routine: bool = False) -> None:
        """Reconcile KEY after DELAY seconds (sooner if it is already due sooner). Urgent
        work takes over a routine entry; routine work never slows an urgent one."""
        when = max(time.monotonic() + max(delay, 0.0), self._not_before.get(key, 0.0))
        if key in self._busy:
            if not routine:  # a routine pass is moot: the running reconcile requeues itself
                self._again[key] = min(when, self._again.get(key, when))
            return
        due = self._due.get(key)
        if routine:
            if due is not None and (key not in self._routine or due <= when):
                return
            self._routine.add(key)
            heap = self._routine_heap
        else:
            if due is not None and key not in self._routine and due <= when:
                return
            if key in self._routine:
                self._routine.discard(key)
                when = min(when, due) if due is not None else when
            heap = self._heap
        self._due[key] = when
        heapq.heappush(heap, (when, next(self._order), key))
        self._wake.set()

    def forget(self, key: Hashable) -> None:
        """KEY is gone: no reconcile, no backoff, nothing kept."""
        self._due.pop(key, None)
        self._routine.discard(key)
        self._again.pop(key, None)
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._due or key in self._again

    def _next(self) -> tuple[Hashable | None, bool, float]:
        """The next key due (and whether it is routine), or how long until one is."""
        now = time.monotonic()
        wait = 3600.0
        lanes = [(self._heap, False)]
        if self._routine_running < self.routine_slots:
            lanes.append((self._routine_heap, True))
        for heap, routine in lanes:
            while heap:
                when, _, key = heap[0]
                if self._due.get(key) != when or (key in self._routine) != routine:
                    heapq.heappop(heap)  # superseded, moved to the other lane, or forgotten
                    continue
                if when > now:
                    wait = min(wait, when - now)
                    break
                heapq.heappop(heap)
                del self._due[key]
                self._routine.discard(key)
                return key, routine, 0.0
        return None, False, wait

    async def run(self, worker: Worker, concurrency: int = 4) -> None:
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        self.running = True
        try:
            while True:
                await slots.acquire()
                key, routine, wait = self._next()
                if key is None:
                    slots.release()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    continue
                self._busy.add(key)
                self._routine_running += routine
                task = asyncio.create_task(self._work(worker, key, slots, routine))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            self.running = False

    async def _work(
        self, worker: Worker, key: Hashable, slots: asyncio.Semaphore, routine: bool = False
    ) -> None:
        requeue: float | Again | None = None
        try:
            requeue = await worker(key)
            self._failures.pop(key, None)
            self._not_before.pop(key, None)
        except Exception as err:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            backoff = min(self.base_delay * 2 ** (count - 1), self.max_delay)
            log.warning("reconcile of %s failed (%s); retry %d in %.0fs", key, err, count, backoff)
            self._not_before[key] = time.monotonic() + backoff
            requeue = backoff
        finally:
            self._busy.discard(key)
            self._routine_running -= routine
            slots.release()
            again = self._again.pop(key, None)
            if again is not None:
                self.add(key, again - time.monotonic())
            if isinstance(requeue, Again):
                self.add(key, requeue.after, requeue.routine)
            elif requeue is not None:
                self.add(key, requeue)
            self._wake.set()
