"""The work queue dedupes keys, honours delays and retries failures with backoff.

Time is the test's: the queue's clock (`time.monotonic` in queue.py) is a fake that only
the test moves, and after each move the queue is let run until nothing more is ready. No
assertion depends on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from portico.controller import queue as queue_module
from portico.controller.queue import Again, WorkQueue

Worker = Callable[[Hashable], Awaitable[Any]]
STEP = 0.002  # the clock moves this much at a time: times below are exact to within it


def after(start: float, times: list[float]) -> list[float]:
    return [t - start for t in times]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Driven:
    """A queue running on the test's clock."""

    def __init__(self, queue: WorkQueue, clock: Clock) -> None:
        self.queue, self.clock = queue, clock
        self.task: asyncio.Task[None] | None = None

    def start(self, worker: Worker, concurrency: int = 2) -> None:
        self.task = asyncio.create_task(self.queue.run(worker, concurrency=concurrency))

    async def settle(self) -> None:
        """Let the queue and its workers run until nothing more happens at this time."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Let the queue run now, then move the clock in steps of STEP, letting it run at each."""
        await self.settle()
        end = self.clock.now + seconds
        while self.clock.now < end - 1e-9:
            self.clock.now = min(self.clock.now + STEP, end)
            self.queue._wake.set()  # the queue would have woken at its own timeout
            await self.settle()

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(queue_module, "time", SimpleNamespace(monotonic=fake))
    return fake


@pytest_asyncio.fixture
async def driven(clock: Clock) -> AsyncIterator[Callable[..., Driven]]:
    made: list[Driven] = []

    def make(**kwargs: Any) -> Driven:
        d = Driven(WorkQueue(**kwargs), clock)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.task is not None:
            await d.stop()


pytestmark = pytest.mark.asyncio


async def test_burst_of_adds_is_one_reconcile(driven: Callable[..., Driven]) -> None:
    calls: list[object] = []

    async def worker(key: object) -> None:
        calls.append(key)

    d = driven()
    for _ in range(50):
        d.queue.add("a")
    d.queue.add("b")
    d.start(worker)
    await d.advance(1.0)
    assert sorted(map(str, calls)) == ["a", "b"]


async def test_failure_is_retried_and_requeue_is_honoured(driven: Callable[..., Driven]) -> None:
    calls: list[float] = []
    d = driven(base_delay=0.05)

    async def worker(key: object) -> float | None:
        calls.append(d.clock.now)
        if len(calls) == 1:
            raise RuntimeError("409 Conflict")
        return 0.5 if len(calls) < 4 else None

    d.queue.add("a")
    d.start(worker)
    await d.advance(5.0)
    # the failure's backoff (0.05 s), then the requeue the worker asked for, twice; then done
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps == pytest.approx([0.05, 0.5, 0.5], abs=STEP)


async def test_one_key_never_runs_twice_at_once(driven: Callable[..., Driven]) -> None:
    running, overlaps, calls = set(), [], []
    release = asyncio.Event()

    async def worker(key: object) -> None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        calls.append(key)
        await release.wait()
        running.discard(key)

    d = driven()
    d.queue.add("a")
    d.start(worker, concurrency=4)
    await d.settle()
    d.queue.add("a")  # an event while "a" runs
    await d.advance(1.0)
    assert calls == ["a"]  # held back until the running one ends
    release.set()
    await d.advance(0.1)
    assert overlaps == [] and calls == ["a", "a"]


async def test_events_never_cut_a_failures_backoff_short(driven: Callable[..., Driven]) -> None:
    times: list[float] = []
    d = driven(base_delay=0.3)

    async def worker(key: object) -> None:
        times.append(d.clock.now)
        if len(times) == 1:
            raise RuntimeError("500 Internal Server Error")

    d.queue.add("a")
    d.start(worker)
    await d.advance(0.05)
    for _ in range(5):  # a burst of watch events while the backoff runs
        d.queue.add("a")
        await d.advance(0.02)
    await d.advance(1.0)
    assert len(times) == 2
    assert times[1] - times[0] == pytest.approx(0.3, abs=STEP)


async def test_events_during_a_failing_reconcile_wait_for_its_backoff(
    driven: Callable[..., Driven],
) -> None:
    """An event that arrives while the reconcile runs (and then fails) does not skip the backoff."""
    times: list[float] = []
    d = driven(base_delay=0.3)

    async def worker(key: object) -> None:
        times.append(d.clock.now)
        if len(times) == 1:
            d.queue.add("a")  # e.g. the child event the failing write itself caused
            raise RuntimeError("409 Conflict")

    d.queue.add("a")
    d.start(worker)
    await d.advance(1.0)
    assert len(times) == 2
    assert times[1] - times[0] == pytest.approx(0.3, abs=STEP)


async def test_a_forgotten_key_is_never_run_and_keeps_nothing(
    driven: Callable[..., Driven],
) -> None:
    calls: list[object] = []

    async def worker(key: object) -> None:
        calls.append(key)

    d = driven()
    d.queue.add("gone", delay=0.05)
    d.queue.add("kept", delay=0.05)
    d.queue.forget("gone")
    assert "gone" not in d.queue and len(d.queue) == 1
    d.start(worker)
    await d.advance(0.2)
    assert calls == ["kept"]


async def test_due_order_follows_delays_not_insertion(driven: Callable[..., Driven]) -> None:
    calls: list[object] = []
    times: list[float] = []
    d = driven()

    async def worker(key: object) -> None:
        calls.append(key)
        times.append(d.clock.now)

    start = d.clock.now
    d.queue.add("late", delay=0.1)
    d.queue.add("early", delay=0.02)
    d.queue.add("late", delay=0.0)  # sooner now: the earlier heap entry is stale
    d.start(worker)
    await d.advance(0.3)
    assert calls == ["late", "early"]
    assert after(start, times) == pytest.approx([0.0, 0.02], abs=STEP)


async def test_urgent_work_goes_before_a_routine_pass_which_runs_a_few_at_a_time(
    driven: Callable[..., Driven],
) -> None:
    calls: list[object] = []
    running: set[object] = set()
    most = [0]
    d = driven()

    async def worker(key: object) -> None:
        running.add(key)
        routine = [k for k in running if str(k).startswith("pass") and k != "pass-3"]
        most[0] = max(most[0], len(routine))
        started = d.clock.now
        while d.clock.now < started + 0.02:  # 20 ms of work on the test's clock
            await asyncio.sleep(0)
        calls.append(key)
        running.discard(key)

    for i in range(10):
        d.queue.add(f"pass-{i}", routine=True)
    d.queue.add("pass-3")  # an event for a key of the pass: urgent now
    d.queue.add("event")
    d.queue.add("event", routine=True)  # a routine add never slows urgent work
    d.start(worker, concurrency=8)
    await d.settle()
    d.queue.add("late-event")  # arrives while the pass runs: next in line
    await d.advance(1.0)
    assert set(calls[:2]) == {"pass-3", "event"}
    assert calls.index("late-event") < 6
    assert sorted(map(str, calls)) == sorted(
        ["event", "late-event", *[f"pass-{i}" for i in range(10)]]
    )
    assert most[0] == 2  # the routine lane's slots, though 8 were free


async def test_a_resync_requeue_is_routine(driven: Callable[..., Driven]) -> None:
    calls: list[float] = []
    d = driven()

    async def worker(key: object) -> Again:
        calls.append(d.clock.now)
        return Again(0.05, routine=True)

    d.queue.add("a")
    d.start(worker)
    await d.settle()
    assert "a" in d.queue._routine and "a" in d.queue
    await d.advance(0.06)
    assert after(calls[0], calls) == pytest.approx([0.0, 0.05], abs=STEP)
