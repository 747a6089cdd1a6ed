"""The measured scenarios: converge, floor, Helm, spec change, idle, restart, scaling probe."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import fleet
from bench.audit import AuditLog, breakdown
from bench.kubeapi import Api, Tracker
from bench.operator import OperatorProcess
from portico.core import pacing
from portico.settings import Settings

CHART = Path(__file__).parent / "chart"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def every(keys: list[Any], moment: Callable[[Any], float | None]) -> Callable[[], bool]:
    """A done() for Tracker.until: true once every key has a moment.

    until() asks after every watch event, thousands of times a second in a converge; asking
    all N keys each time kept this process busy on the cores the API server needs (it is
    measured against a floor that asks nothing). Each key is asked until it has a moment, and
    a question stops at the first key without one.
    """
    waiting = list(reversed(keys))

    def done() -> bool:
        while waiting and moment(waiting[-1]) is not None:
            waiting.pop()
        return not waiting

    return done


def spread(values: list[float]) -> dict[str, float]:
    return {
        "total_s": round(max(values), 3),
        "p50_s": round(percentile(values, 0.5), 3),
        "p99_s": round(percentile(values, 0.99), 3),
    }


@dataclass
class Bench:
    api: Api
    tracker: Tracker
    audit: AuditLog
    operator: OperatorProcess
    settings: Settings
    kubeconfig: Path  # admin, for helm
    helm: Path
    workdir: Path
    settle: float
    present: int = 0  # portals in the cluster
    # What the operator watches, from its first start: a later start has every watch open
    # only once each of these is.
    watches: frozenset[str] = frozenset()

    async def namespace(self, name: str) -> None:
        await self.api.create(fleet.namespace(name))
        # Pods are admitted only once the namespace's default ServiceAccount exists.
        path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
        for _ in range(300):
            got = await self.api.request("GET", path, ok=(404,))
            if got:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"namespace {name} got no default ServiceAccount")

    def applied_at(self, namespace: str, name: str, children: set[tuple[str, str]]) -> float | None:
        """When every child existed and the status answered generation 1."""
        portal = self.tracker.get("Portal", namespace, name)
        if portal is None or 1 not in portal.answered:
            return None
        moments = [portal.answered[1]]
        for kind, child in children:
            seen = self.tracker.get(kind, namespace, child)
            if seen is None:
                return None
            moments.append(seen.created)
        return max(moments)

    def ready_at(self, namespace: str, name: str, generation: int = 1) -> float | None:
        portal = self.tracker.get("Portal", namespace, name)
        return portal.ready.get(generation) if portal else None

    async def converge(self, n: int, namespace: str, timeout: float) -> dict[str, Any]:
        """N new portals at once, until every one is applied, then Ready."""
        await self.namespace(namespace)
        applied, t0, since = await self._grow(n, namespace, timeout, prefix="p")
        names = [f"p{i:05d}" for i in range(n)]

        ready = every(names, lambda x: self.ready_at(namespace, x))
        await self.tracker.until(ready, timeout, f"{n} portals Ready")
        await asyncio.sleep(self.settle)  # the last status patches and Events land
        return {
            "n": n,
            "applied": applied,
            "ready": spread([self.ready_at(namespace, x) - t0 for x in names]),  # type: ignore[operator]
            "api_per_new_portal": breakdown(self.audit.between(since, time.time()), n),
        }

    async def grow(self, n: int, namespace: str, timeout: float) -> dict[str, Any]:
        """N more portals, until each has its children and a status (not Ready: no pods run).

        NAMESPACE must exist already (with pods off, no ServiceAccount would be made for it).
        """
        applied, _, since = await self._grow(n, namespace, timeout, prefix="s")
        return {
            "n": n,
            "applied": applied,
            "api_per_new_portal": breakdown(self.audit.between(since, time.time()), n),
        }

    async def _grow(
        self, n: int, namespace: str, timeout: float, prefix: str
    ) -> tuple[dict[str, float], float, float]:
        """Create N portals at once and wait until all are applied: their spread, t0, since."""
        portals = [fleet.portal(namespace, f"{prefix}{i:05d}") for i in range(n)]
        wanted = {p["metadata"]["name"]: fleet.expected(p, self.settings) for p in portals}
        since, t0 = time.time(), time.monotonic()
        await asyncio.gather(*(self.api.create(p) for p in portals))
        self.present += n

        def applied(x: str) -> float | None:
            return self.applied_at(namespace, x, wanted[x])

        await self.tracker.until(every(list(wanted), applied), timeout, f"{n} portals applied")
        return spread([applied(x) - t0 for x in wanted]), t0, since  # type: ignore[operator]

    async def floor(self, n: int, namespace: str, timeout: float) -> dict[str, Any]:
        """The same children, written straight by this client with no operator."""
        await self.namespace(namespace)
        manifests = [
            fleet.standalone(child, namespace)
            for i in range(n)
            for child in fleet.children(fleet.portal(namespace, f"p{i:05d}"), self.settings)
        ]
        retries, t0 = self.api.retries, time.monotonic()
        await asyncio.gather(*(self.api.apply(m, "bench-floor") for m in manifests))
        written = time.monotonic() - t0
        available = await self._available(namespace, manifests, t0, timeout)
        removed = await self.remove_namespace(namespace, timeout)
        return {
            "n": n,
            "applied_s": round(written, 3),
            "available_s": round(available, 3),
            "writes": len(manifests),
            "in_flight": self.api.limit,
            "retried": self.api.retries - retries,
            "removed_s": round(removed, 3),
        }

    async def remove_namespace(self, name: str, timeout: float) -> float:
        """Delete a namespace and wait until it is gone; returns the seconds it took.

        The floor leaves the cluster as it found it, so Portico is measured on the same
        cluster the floor was (not on one that also holds the floor's N Deployments, pods,
        Jobs and Services)."""
        path, t0 = f"/api/v1/namespaces/{name}", time.monotonic()
        await self.api.request("DELETE", path, {"propagationPolicy": "Background"}, ok=(404,))
        while time.monotonic() - t0 < timeout:
            if await self.api.request("GET", path, ok=(404,)) is None:
                return time.monotonic() - t0
            await asyncio.sleep(1)
        raise TimeoutError(f"namespace {name} was not gone after {timeout:.0f}s")

    async def _available(
        self, namespace: str, manifests: list[dict[str, Any]], t0: float, timeout: float
    ) -> float:
        """Seconds from t0 until every Deployment is Available and every Job Complete."""
        waited = [
            (m["kind"], m["metadata"]["name"])
            for m in manifests
            if m["kind"] in ("Deployment", "Job")
        ]

        def available(key: tuple[str, str]) -> float | None:
            seen = self.tracker.get(key[0], namespace, key[1])
            return seen.available if seen else None

        done = every(waited, available)
        return await self.tracker.until(done, timeout, f"{namespace} available") - t0

    async def helm_baseline(
        self, n: int, namespace: str, parallel: int, timeout: float, wait: bool = False
    ) -> dict[str, Any]:
        """One `helm install` per portal of bench/chart, holding the same children.

        WAIT: each install waits until its release is available and its Job complete
        (`--wait --wait-for-jobs`), as a loop that wants each portal usable would.
        """
        await self.namespace(namespace)
        values_dir = self.workdir / f"helm-{namespace}"
        values_dir.mkdir(exist_ok=True)
        releases, manifests = [], []
        for i in range(n):
            name = f"p{i:05d}"
            kids = [
                fleet.standalone(c, namespace)
                for c in fleet.children(fleet.portal(namespace, name), self.settings)
            ]
            manifests += kids
            path = values_dir / f"{name}.json"
            path.write_text(json.dumps({"children": kids}))
            releases.append((name, path))
        limit = asyncio.Semaphore(parallel)

        async def install(name: str, values: Path) -> None:
            async with limit:
                proc = await asyncio.create_subprocess_exec(
                    str(self.helm),
                    "install",
                    name,
                    str(CHART),
                    "--namespace",
                    namespace,
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "-f",
                    str(values),
                    *(["--wait", "--wait-for-jobs", "--timeout", "10m"] if wait else []),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await proc.communicate()
                if proc.returncode != 0:
                    raise RuntimeError(f"helm install {name} failed: {err.decode()[-500:]}")

        t0 = time.monotonic()
        await asyncio.gather(*(install(name, values) for name, values in releases))
        installed = time.monotonic() - t0
        available = await self._available(namespace, manifests, t0, timeout)
        return {
            "n": n,
            "parallel_installs": parallel,
            "wait": wait,
            "installed_s": round(installed, 3),
            "available_s": round(available, 3),
        }

    async def spec_change(self, namespace: str, names: list[str], timeout: float) -> dict[str, Any]:
        """Edit every portal's displayName once; cost and time until Ready at generation 2."""
        since, t0 = time.time(), time.monotonic()
        body = {"spec": {"displayName": "Bench portal, renamed"}}
        await asyncio.gather(*(self.api.merge_patch("Portal", namespace, n, body) for n in names))
        done = every(names, lambda n: self.ready_at(namespace, n, 2))
        await self.tracker.until(done, timeout, "spec changes Ready")
        times = [self.ready_at(namespace, n, 2) - t0 for n in names]  # type: ignore[operator]
        await asyncio.sleep(self.settle)
        return {
            "n": len(names),
            "ready": spread(times),
            "api_per_change": breakdown(self.audit.between(since, time.time()), len(names)),
        }

    async def probe(self, namespace: str, repeats: int, timeout: float) -> dict[str, Any]:
        """One new portal among those present: seconds until its children are applied."""
        times = []
        for r in range(repeats):
            name = f"probe-{self.present}-{r}"
            obj = fleet.portal(namespace, name)
            wanted = fleet.expected(obj, self.settings)
            t0 = time.monotonic()
            await self.api.create(obj)
            done = lambda: self.applied_at(namespace, name, wanted) is not None  # noqa: B023, E731
            at = await self.tracker.until(done, timeout, f"probe {name} applied")
            times.append(at - t0)
            self.present += 1
            await asyncio.sleep(1)
        return {
            "present": self.present - repeats,
            "children_applied_s": round(statistics.median(times), 3),
            "runs_s": [round(t, 3) for t in times],
        }

    async def idle(self, seconds: float) -> dict[str, Any]:
        """Nothing changes for SECONDS: what the operator asks the API and what it costs itself."""
        since = time.time()
        usage = await self.operator.sample(seconds)
        return {
            "window_s": seconds,
            "portals": self.present,
            "api_per_portal": breakdown(self.audit.between(since, time.time()), self.present),
            "usage": usage,
        }

    async def restart(self, quiet: float, limit: float) -> dict[str, Any]:
        """Stop and start the operator with every portal Ready; its requests until it goes quiet.

        The window ends after QUIET seconds without a read or write, or LIMIT seconds after
        startup (the resync period): an operator that never goes quiet still gets a figure.
        """
        self.operator.stop()
        startup = await self.operator.start()
        since = self.operator.started_at

        def first_watches() -> dict[str, float]:
            first: dict[str, float] = {}
            for r in self.audit.between(since, time.time()):
                if r.verb == "watch":
                    first.setdefault(r.resource, r.at)
            return first

        def all_open() -> bool:
            return self.watches <= set(first_watches())

        end = await self._quiet(since, quiet, startup + limit, all_open)
        first_watch = first_watches()
        self.watches = self.watches or frozenset(first_watch)
        return {
            "portals": self.present,
            "startup_log_s": round(startup, 3),
            "startup_marker": self.operator.marker,
            # None when a watch was still not open at the end of the window.
            "startup_all_watches_s": round(max(first_watch.values()) - since, 3)
            if first_watch and all_open()
            else None,
            "watched_resources": sorted(first_watch),
            "window_s": round(end - since, 1),
            "api_per_portal": breakdown(self.audit.between(since, end), self.present),
        }

    async def drain(self, gap: float, limit: float) -> dict[str, Any]:
        """Until no held status write can still be owed, then GAP seconds without a read or
        write (at most LIMIT seconds).

        A fleet that has just grown still owes status writes: while many portals configure
        at once their progress waits up to `pacing.progress_hold` after each portal's last
        status write (ten minutes at 5,000), and a restart keeps that pace. A quiet gap
        alone cannot see a write held that long, so the drain first waits until that hold
        has passed since the last status write it saw. An idle window that should find the
        fleet at rest starts after them; what they cost is reported here.
        """
        since = time.time()
        hold = pacing.progress_hold(self.settings.status_hold_seconds, self.present)
        written = [r.at for r in self.audit.between(0, since) if r.resource == "portals/status"]
        owed_until = max(written, default=since) + hold
        end = await self._quiet(since, gap, limit, lambda: time.time() >= owed_until)
        return {
            "window_s": round(end - since, 1),
            "held_up_to_s": round(max(owed_until - since, 0.0), 1),
            "quiet": end - since < limit,
            "api_per_portal": breakdown(self.audit.between(since, end), self.present),
        }

    async def _quiet(
        self, since: float, gap: float, limit: float, ready: Callable[[], bool] = lambda: True
    ) -> float:
        """The moment the operator made no read or write for GAP seconds and READY holds
        (at most LIMIT)."""
        while time.time() - since < limit:
            await asyncio.sleep(1)
            if not ready():
                continue
            busy = [r for r in self.audit.between(since, time.time()) if r.kind != "watch"]
            last = max((r.at for r in busy), default=since)
            if time.time() - last >= gap:
                return time.time()
        return time.time()
