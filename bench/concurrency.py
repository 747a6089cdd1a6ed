"""The concurrency model, measured: what the one lock costs, and why reconciles stay in threads.

Run: .venv/bin/python -m bench.concurrency [SECONDS]

Three ways to run the same work in one process, same run, printed as ratios:

- **threads, unlocked**: the code before the model (reconcile threads and the event loop
  share the store and index without a lock) — the baseline;
- **threads + one lock**: the model as built (`docs/architecture.md`, "State and threads");
- **on the loop**: every reconcile a task on the event loop (the async-client model; its
  requests would be awaited, here a `sleep(0)` where each request would be).

The work: a fleet of portals in the store; reconciles read a portal and its children, parse
and render it (the CPU of a reconcile without the API round trips) and keep two write
answers; meanwhile the loop handles a watch event every millisecond. Printed per way: the
reconciles done per second, and how late the loop ran its events (the time a watch event
waits for the interpreter), median, p99 and worst.
"""

from __future__ import annotations

import asyncio
import copy
import statistics
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from bench.render import INSTANCE, ROOT
from portico.api import validation
from portico.controller.memo import Answers
from portico.controller.observe import parse
from portico.controller.operator import Operator
from portico.core import render
from portico.settings import Settings

PORTALS = 200
WORKERS = 16  # the operator's default reconcile workers
SETTINGS = Settings()
EXAMPLE = validation.admit(
    "Portal", yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
)[0]


class NoApi:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the bench made a request ({name})")


class NoLock:
    """The code before the model: nothing held."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def fleet(locked: bool) -> Operator:
    op = Operator.build(SETTINGS, NoApi())  # type: ignore[arg-type]
    if not locked:
        none: Any = NoLock()
        op.store.lock = op.index.lock = op.observer.lock = none
        op.store.portals.lock = op.store.instances.lock = none
    for i in range(PORTALS):
        body = copy.deepcopy(EXAMPLE)
        body["metadata"].update(
            name=f"p{i}", namespace="team", uid=f"uid-{i}", resourceVersion=f"{i}-0"
        )
        body["metadata"]["creationTimestamp"] = "2026-12-01T00:00:00Z"
        body["spec"]["subdomain"] = f"p{i}"
        body["spec"].pop("customDomain", None)
        op.portal_event("ADDED", body)
        for kind, child in enumerate(("config", "web")):
            op.child_event("ConfigMap", "ADDED", config_map(i, child, f"{i}-{kind}"))
    return op


def config_map(i: int, child: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"p{i}-{child}",
            "namespace": "team",
            "resourceVersion": version,
            "labels": {"portico.dev/portal": f"p{i}", "app.kubernetes.io/managed-by": "portico"},
            "ownerReferences": [{"uid": f"uid-{i}", "controller": True}],
        },
        "data": {"n": version},
    }


class Versions:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def next(self) -> str:
        with self.lock:
            self.n += 1
            return f"w{self.n}"


def reconcile_cpu(op: Operator, i: int, versions: Versions) -> None:
    """Observe (store, index), decide (parse, render), keep the write answers."""
    key = ("team", f"p{i}")
    obj = op.store.portals[key]
    op.store.owned(*key, f"uid-{i}")
    op.index.subdomain_owner(f"p{i}")
    render.children(parse(obj), INSTANCE, SETTINGS)
    Answers(op.store).written("ConfigMap", config_map(i, "config", versions.next()))
    obj["metadata"]["resourceVersion"] = versions.next()
    Answers(op.store).written("Portal", obj)


async def watch_events(op: Operator, stop: asyncio.Event, lags: list[float]) -> None:
    """A watch event every millisecond (a child of some portal changed)."""
    n = 0
    while not stop.is_set():
        due = time.perf_counter() + 0.001
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - due)
        n += 1
        op.child_event("ConfigMap", "MODIFIED", config_map(n % PORTALS, "web", f"e{n}"))


async def run_threads(op: Operator, seconds: float) -> tuple[int, list[float]]:
    loop, stop, done = asyncio.get_running_loop(), asyncio.Event(), [0]
    lags: list[float] = []
    versions = Versions()
    executor = ThreadPoolExecutor(WORKERS)

    async def worker(w: int) -> None:
        i = w
        while not stop.is_set():
            await loop.run_in_executor(executor, reconcile_cpu, op, i % PORTALS, versions)
            done[0] += 1
            i += WORKERS

    tasks = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
    watcher = asyncio.create_task(watch_events(op, stop, lags))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, watcher)
    executor.shutdown()
    return done[0], lags


async def run_on_loop(op: Operator, seconds: float) -> tuple[int, list[float]]:
    stop, done = asyncio.Event(), [0]
    lags: list[float] = []
    versions = Versions()

    async def worker(w: int) -> None:
        i = w
        while not stop.is_set():
            await asyncio.sleep(0)  # the reads an async client would await
            reconcile_cpu(op, i % PORTALS, versions)
            await asyncio.sleep(0)  # the writes
            done[0] += 1
            i += WORKERS

    tasks = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
    watcher = asyncio.create_task(watch_events(op, stop, lags))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, watcher)
    return done[0], lags


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ways: dict[str, Callable[[], Coroutine[Any, Any, tuple[int, list[float]]]]] = {
        "threads, unlocked (before)": lambda: run_threads(fleet(locked=False), seconds),
        "threads + one lock (built)": lambda: run_threads(fleet(locked=True), seconds),
        "on the loop (async model)": lambda: run_on_loop(fleet(locked=False), seconds),
    }
    # The ways take turns, round after round: a busy neighbour on the machine slows each alike.
    samples: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            done, lags = asyncio.run(way())
            lags.sort()
            samples[name].append(
                (done / seconds, statistics.median(lags), lags[int(len(lags) * 0.99)], lags[-1])
            )
    results = {
        name: [statistics.median(s[i] for s in runs) for i in range(4)]
        for name, runs in samples.items()
    }
    base = results["threads, unlocked (before)"]
    print(f"{PORTALS} portals, {WORKERS} workers, {rounds} rounds of {seconds:.0f} s (medians)")
    print(f"{'':<28} {'reconciles/s':>14} {'event lag p50':>18} {'p99':>17} {'worst':>10}")
    for name, (rate, p50, p99, worst) in results.items():
        print(
            f"{name:<28} {rate:8.0f} {rate / base[0]:4.2f}x "
            f"{p50 * 1e3:7.2f} ms {p50 / base[1]:5.1f}x "
            f"{p99 * 1e3:7.1f} ms {p99 / base[2]:5.1f}x {worst * 1e3:7.1f} ms"
        )


if __name__ == "__main__":
    main()
