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

Work is fair across namespaces (tenants). Keys that are due wait in one line
per namespace, and the lines are served in turn: a namespace with a thousand
keys due does not go before another's one. While others wait, a namespace
runs at most its share of the workers (workers / namespaces with work), and
never all of them: one worker is always left for a namespace that has none
running, so slow reconciles in one namespace (a flood of hostile .pfx files,
DNS that times out) cannot hold the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections import Counter, OrderedDict, deque
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


def namespace_of(key: Hashable) -> Hashable:
    """("Portal", namespace, name) → namespace; anything else is cluster-wide ("")."""
    if isinstance(key, tuple) and len(key) == 3 and key[0] == "Portal":
        return key[1]  # type: ignore[no-any-return]
    return ""


class WorkQueue:
    def __init__(
        self,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        tenant: Callable[[Hashable], Hashable] = namespace_of,
    ) -> None:
        self._clock, self._tenant = clock, tenant
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
        # Due now, by lane (routine?) and namespace, namespaces in the order they are served.
        self._ready: dict[bool, OrderedDict[Hashable, deque[Hashable]]] = {
            False: OrderedDict(),
            True: OrderedDict(),
        }
        self._ready_keys: dict[Hashable, bool] = {}  # key → its lane, while it waits there
        self._running: Counter[Hashable] = Counter()  # per namespace
        self.concurrency = 4
        self._wake = asyncio.Event()
        self.base_delay, self.max_delay = base_delay, max_delay
        self.running = False

    def add(self, key: Hashable, delay: float = 0.0, routine: bool = False) -> None:
        """Reconcile KEY after DELAY seconds (sooner if it is already due sooner). Urgent
        work takes over a routine entry; routine work never slows an urgent one."""
        when = max(self._clock() + max(delay, 0.0), self._not_before.get(key, 0.0))
        if key in self._busy:
            if not routine:  # a routine pass is moot: the running reconcile requeues itself
                self._again[key] = min(when, self._again.get(key, when))
            return
        lane = self._ready_keys.get(key)
        if lane is not None:  # due already: at most moved from the routine line to urgent
            if lane and not routine:
                self._line(key, False)
                self._wake.set()
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
        self._ready_keys.pop(key, None)  # its place in a line is skipped when reached
        self._again.pop(key, None)
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def __len__(self) -> int:
        return len(self._due) + len(self._ready_keys)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._due or key in self._ready_keys or key in self._again

    def _line(self, key: Hashable, routine: bool) -> None:
        self._ready_keys[key] = routine
        self._ready[routine].setdefault(self._tenant(key), deque()).append(key)

    def _promote(self, now: float) -> float:
        """Move every key now due into its namespace's line; returns seconds to the next."""
        wait = 3600.0
        for heap, routine in ((self._heap, False), (self._routine_heap, True)):
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
                self._line(key, routine)
        return wait

    def share(self) -> int:
        """How many workers one namespace may hold while another namespace waits."""
        active = {ns for ns, n in self._running.items() if n > 0}
        for lines in self._ready.values():
            active.update(ns for ns, line in lines.items() if line)
        return max(1, math.ceil(self.concurrency / max(len(active), 1)))

    def _pick(self, routine: bool) -> Hashable | None:
        """The next key of the lane: namespaces in turn, none beyond what is fair."""
        lines = self._ready[routine]
        # One worker stays free for a namespace that has none running (with 4 or more).
        most = self.concurrency - 1 if self.concurrency >= 4 else self.concurrency
        share = min(self.share(), most)
        for fair in (True, False):  # below their share first; beyond it only if no one waits
            for ns in list(lines):
                line = lines[ns]
                while line and self._ready_keys.get(line[0]) is not routine:
                    line.popleft()  # forgotten or moved to the urgent line
                if not line:
                    del lines[ns]
                    continue
                if self._running[ns] >= (share if fair else most):
                    continue
                key = line.popleft()
                del self._ready_keys[key]
                if line:
                    lines.move_to_end(ns)  # its next key waits for the others' turn
                else:
                    del lines[ns]
                return key
        return None

    def _next(self) -> tuple[Hashable | None, bool, float]:
        """The next key due (and whether it is routine), or how long until one is."""
        wait = self._promote(self._clock())
        lanes = [False]
        if self._routine_running < self.routine_slots:
            lanes.append(True)
        for routine in lanes:
            key = self._pick(routine)
            if key is not None:
                return key, routine, 0.0
        # Keys held back for fairness wait for a reconcile to end: `done` wakes the loop.
        return None, False, wait

    def take(self) -> tuple[Hashable | None, bool, float]:
        """Start the next key due (the caller must call `done` for it), or say how long
        until one is due. For `run`, and for tests that drive the queue by hand."""
        key, routine, wait = self._next()
        if key is not None:
            self._busy.add(key)
            self._routine_running += routine
            self._running[self._tenant(key)] += 1
        return key, routine, wait

    def done(self, key: Hashable, routine: bool, requeue: float | Again | None = None) -> None:
        """KEY's reconcile ended; REQUEUE as its worker answered."""
        self._busy.discard(key)
        self._routine_running -= routine
        ns = self._tenant(key)
        self._running[ns] -= 1
        if self._running[ns] <= 0:
            del self._running[ns]
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, again - self._clock())
        if isinstance(requeue, Again):
            self.add(key, requeue.after, requeue.routine)
        elif requeue is not None:
            self.add(key, requeue)
        self._wake.set()

    async def run(self, worker: Worker, concurrency: int = 4) -> None:
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()
        self.running = True
        self.concurrency = concurrency
        try:
            while True:
                await slots.acquire()
                key, routine, wait = self.take()
                if key is None:
                    slots.release()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait)
                    continue
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
            self._not_before[key] = self._clock() + backoff
            requeue = backoff
        finally:
            slots.release()
            self.done(key, routine, requeue)
