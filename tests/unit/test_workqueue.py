"""The work queue dedupes keys, honours delays and retries failures with backoff."""

from __future__ import annotations

import asyncio
import contextlib

from portico.workqueue import WorkQueue


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


def test_an_event_during_a_failing_run_does_not_cut_its_backoff_short() -> None:
    times: list[float] = []

    async def worker(key: object) -> None:
        times.append(asyncio.get_running_loop().time())
        if len(times) == 1:
            queue.add("a")  # a watch event arrives while this run is still going
            await asyncio.sleep(0.02)
            raise RuntimeError("403 Forbidden")

    queue = WorkQueue(base_delay=0.3)

    async def main() -> None:
        queue.add("a")
        await _drive(queue, worker, 0.6)

    asyncio.run(main())
    assert len(times) == 2
    assert times[1] - times[0] >= 0.28
