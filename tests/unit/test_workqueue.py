"""The work queue dedupes keys, honours delays and retries failures with backoff."""

from __future__ import annotations

import asyncio
import contextlib

from portico.controller.queue import WorkQueue


async def _drive(queue: WorkQueue, worker, seconds: float) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(queue.run(worker, concurrency=2))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_burst_of_adds_is_one_reconcile() -> None:
    calls: list[object] = []

    async def worker(key: object) -> None:
        calls.append(key)

    async def main() -> None:
        queue = WorkQueue()
        for _ in range(50):
            queue.add("a")
        queue.add("b")
        await _drive(queue, worker, 0.2)

    asyncio.run(main())
    assert sorted(calls) == ["a", "b"]  # type: ignore[type-var]


def test_failure_is_retried_and_requeue_is_honoured() -> None:
    calls: list[str] = []

    async def worker(key: object) -> float | None:
        calls.append(str(key))
        if len(calls) == 1:
            raise RuntimeError("409 Conflict")
        return 0.05 if len(calls) < 4 else None

    async def main() -> None:
        queue = WorkQueue(base_delay=0.05)
        queue.add("a")
        await _drive(queue, worker, 0.6)

    asyncio.run(main())
    assert calls == ["a", "a", "a", "a"]


def test_one_key_never_runs_twice_at_once() -> None:
    running, overlaps = set(), []

    async def worker(key: object) -> None:
        if key in running:
            overlaps.append(key)
        running.add(key)
        await asyncio.sleep(0.05)
        running.discard(key)

    async def main() -> None:
        queue = WorkQueue()
        queue.add("a")
        await asyncio.sleep(0)
        task = asyncio.create_task(queue.run(worker, concurrency=4))
        await asyncio.sleep(0.01)
        queue.add("a")
        await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert overlaps == []


def test_events_never_cut_a_failures_backoff_short() -> None:
    times: list[float] = []

    async def worker(key: object) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) == 1:
            raise RuntimeError("500 Internal Server Error")

    async def main() -> None:
        queue = WorkQueue(base_delay=0.3)
        queue.add("a")
        task = asyncio.create_task(queue.run(worker))
        await asyncio.sleep(0.05)
        for _ in range(5):  # a burst of watch events while the backoff runs
            queue.add("a")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(times) == 2
    assert times[1] - times[0] >= 0.28


def test_events_during_a_failing_reconcile_wait_for_its_backoff() -> None:
    """An event that arrives while the reconcile runs (and then fails) does not skip the backoff."""
    times: list[float] = []

    async def worker(key: object) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) == 1:
            queue.add("a")  # e.g. the child event the failing write itself caused
            raise RuntimeError("409 Conflict")

    queue = WorkQueue(base_delay=0.3)

    async def main() -> None:
        queue.add("a")
        await _drive(queue, worker, 0.6)

    asyncio.run(main())
    assert len(times) == 2
    assert times[1] - times[0] >= 0.28


def test_a_forgotten_key_is_never_run_and_keeps_nothing() -> None:
    calls: list[object] = []

    async def worker(key: object) -> None:
        calls.append(key)

    async def main() -> None:
        queue = WorkQueue()
        queue.add("gone", delay=0.05)
        queue.add("kept", delay=0.05)
        queue.forget("gone")
        assert "gone" not in queue and len(queue) == 1
        await _drive(queue, worker, 0.2)

    asyncio.run(main())
    assert calls == ["kept"]


def test_due_order_follows_delays_not_insertion() -> None:
    calls: list[object] = []

    async def worker(key: object) -> None:
        calls.append(key)

    async def main() -> None:
        queue = WorkQueue()
        queue.add("late", delay=0.1)
        queue.add("early", delay=0.02)
        queue.add("late", delay=0.0)  # sooner now: the earlier heap entry is stale
        await _drive(queue, worker, 0.3)

    asyncio.run(main())
    assert calls == ["late", "early"]


def test_urgent_work_goes_before_a_routine_pass_which_runs_a_few_at_a_time() -> None:
    calls: list[object] = []
    running: set[object] = set()
    most = [0]

    async def worker(key: object) -> None:
        running.add(key)
        routine = [k for k in running if str(k).startswith("pass") and k != "pass-3"]
        most[0] = max(most[0], len(routine))
        await asyncio.sleep(0.02)
        calls.append(key)
        running.discard(key)

    async def main() -> None:
        queue = WorkQueue()
        for i in range(10):
            queue.add(f"pass-{i}", routine=True)
        queue.add("pass-3")  # an event for a key of the pass: urgent now
        queue.add("event")
        queue.add("event", routine=True)  # a routine add never slows urgent work
        task = asyncio.create_task(queue.run(worker, concurrency=8))
        await asyncio.sleep(0.01)
        queue.add("late-event")  # arrives while the pass runs: next in line
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert set(calls[:2]) == {"pass-3", "event"}
    assert calls.index("late-event") < 6
    assert sorted(map(str, calls)) == sorted(
        ["event", "late-event", *[f"pass-{i}" for i in range(10)]]
    )
    assert most[0] == 2  # the routine lane's slots, though 8 were free


def test_a_resync_requeue_is_routine() -> None:
    from portico.controller.queue import Again

    calls: list[object] = []

    async def worker(key: object) -> Again:
        calls.append(key)
        return Again(0.05, routine=True)

    async def main() -> None:
        queue = WorkQueue()
        queue.add("a")
        task = asyncio.create_task(queue.run(worker, concurrency=2))
        await asyncio.sleep(0.01)
        assert "a" in queue._routine and "a" in queue
        await asyncio.sleep(0.08)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert calls == ["a", "a"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def portal(namespace: str, i: int) -> tuple[str, str, str]:
    return ("Portal", namespace, f"p{i:02d}")


def test_a_flood_in_one_namespace_takes_no_more_than_its_share() -> None:
    """20 slow portals in `hostile`, then 4 in `team`: `team` is served at once and, while
    both wait, each namespace holds at most half of the workers."""
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.concurrency = 8
    for i in range(20):
        queue.add(portal("hostile", i))
    running: list[tuple[str, str, str]] = []
    while (key := queue.take()[0]) is not None:
        running.append(key)  # type: ignore[arg-type]
    # Alone, the flood may use all workers but one: the one kept for a newcomer.
    assert len(running) == 7 and {k[1] for k in running} == {"hostile"}
    for i in range(4):
        queue.add(portal("team", i))
    first = queue.take()[0]
    assert first is not None and first[1] == "team"  # at once, not after 20 hostile ones
    running.append(first)  # type: ignore[arg-type]
    # all 8 workers busy now: the loop takes again only when a reconcile ends
    # As the flood's reconciles end, the freed workers go to `team` until it holds its share.
    served = []
    for _ in range(6):
        old = next(k for k in running if k[1] == "hostile")
        running.remove(old)
        queue.done(old, False)
        key = queue.take()[0]
        assert key is not None
        running.append(key)  # type: ignore[arg-type]
        served.append(key[1])  # type: ignore[index]
    assert served[:3] == ["team"] * 3  # team reaches 4 (its whole demand) first
    assert sum(1 for k in running if k[1] == "hostile") == 4  # hostile: its share of 8


def test_namespaces_are_served_in_turn_not_by_backlog() -> None:
    clock = Clock()
    queue = WorkQueue(clock=clock)
    queue.concurrency = 1
    for i in range(5):
        queue.add(portal("a", i))
    queue.add(portal("b", 0), delay=1.0)
    queue.add(portal("c", 0), delay=1.0)
    order = []
    key = queue.take()[0]
    assert key == portal("a", 0)
    clock.now += 2  # b and c become due while a's backlog waits
    queue.done(key, False)
    while (key := queue.take()[0]) is not None:
        order.append(key[1])  # type: ignore[index]
        queue.done(key, False)
    assert order[:3] == ["a", "b", "c"] or order[:3] == ["b", "c", "a"]
    assert order.count("a") == 4 and order[-1] == "a"


def test_cluster_wide_keys_and_plain_keys_form_one_line() -> None:
    queue = WorkQueue(clock=Clock())
    queue.concurrency = 4
    for key in [("PortalInstance", "crm"), "x", "y", "z"]:
        queue.add(key)
    taken = [queue.take()[0] for _ in range(4)]
    assert taken == [("PortalInstance", "crm"), "x", "y", None]  # the last is kept free
