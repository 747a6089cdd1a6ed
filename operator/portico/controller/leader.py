"""Leader election over a coordination.k8s.io/v1 Lease, the way client-go does it.

Every replica is a candidate. The holder renews the Lease every retry period;
a candidate takes it over only once it has seen the same record, unchanged,
for a whole lease duration (timed on its own clock, so clock skew between
nodes does not matter). A leader that has not renewed within the renew
deadline stops writing (`may_write` turns false: the write path checks it),
and the renew deadline is shorter than the lease duration, so it stops before
anyone else may take the Lease. A clean shutdown releases the Lease so a
standby takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

from portico.controller.kube import ApiError, Kube
from portico.settings import Settings

LEASE_NAME = "portico-leader"
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
JITTER = 1.2  # client-go's JitterFactor: retries spread over retry period x [1, 1.2]
LEADING = Gauge("portico_leader", "1 while this replica holds the leader Lease")
log = logging.getLogger("portico.controller.leader")


def own_identity(env: dict[str, str] | None = None) -> str:
    """This replica's name: the pod's (POD_NAME, from the chart), else host and process."""
    env = dict(os.environ) if env is None else env
    return env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class NotLeader(RuntimeError):
    """A write was refused because this replica does not (or no longer surely) lead."""


@dataclass(frozen=True)
class Election:
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    name: str = LEASE_NAME

    @classmethod
    def from_settings(cls, settings: Settings, env: dict[str, str] | None = None) -> Election:
        env = dict(os.environ) if env is None else env
        return cls(
            namespace=settings.leader_election_namespace or own_namespace(),
            identity=own_identity(env),
            lease_duration=settings.leader_election_lease_duration,
            renew_deadline=settings.leader_election_renew_deadline,
            retry_period=settings.leader_election_retry_period,
        )


def own_namespace() -> str:
    """The pod's namespace (from its service account), else `default` (a local run)."""
    try:
        return SA_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _now() -> str:
    # MicroTime, as client-go writes it.
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire, renew and release the Lease; tell the operator when it leads."""

    def __init__(
        self, kube: Kube, election: Election, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube, self.election, self.clock = kube, election, clock
        self.path = (
            f"/apis/coordination.k8s.io/v1/namespaces/{election.namespace}/leases/{election.name}"
        )
        # Start of the last acquire/renew request that succeeded (None: not leading).
        self._renewed_at: float | None = None
        # The last Lease record seen and when it was first seen, by our clock.
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._changed = asyncio.Event()

    # -- what the operator asks ----------------------------------------------

    def may_write(self) -> bool:
        """True while the last renewal is younger than the renew deadline (thread-safe)."""
        renewed = self._renewed_at
        return renewed is not None and self.clock() < renewed + self.election.renew_deadline

    @property
    def is_leader(self) -> bool:
        return self.may_write()

    async def wait_leading(self) -> None:
        while not self.may_write():
            await self._wait_change()

    async def wait_lost(self) -> None:
        while self.may_write():
            await self._wait_change()

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    # -- the loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Forever: become leader, renew until that fails, then stand by again."""
        e = self.election
        log.info("leader election: candidate %s for Lease %s/%s", e.identity, e.namespace, e.name)
        while True:
            await self._acquire()
            self._set_leading(True)
            await self._renew()
            self._set_leading(False)

    async def _acquire(self) -> None:
        while not await self._attempt():
            await asyncio.sleep(self.election.retry_period * random.uniform(1.0, JITTER))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.election.retry_period)
            if not await self._attempt() and not self.may_write():
                return

    async def _attempt(self) -> bool:
        """One try to acquire or renew, bounded so a hung request cannot outlive the deadline."""
        limit = self.election.renew_deadline
        if self._renewed_at is not None:
            limit = max(self._renewed_at + limit - self.clock(), 0.1)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.try_acquire_or_renew), limit)
        except (TimeoutError, ApiError, OSError) as err:
            log.warning("leader election: %s could not reach the Lease: %s", self._who(), err)
        except Exception as err:  # the client's own errors (urllib3, TLS) must not end the loop
            log.warning("leader election: %s: %s", type(err).__name__, err)
        return False

    def _who(self) -> str:
        return "leader" if self.may_write() else "candidate"

    def _set_leading(self, leading: bool) -> None:
        LEADING.set(1 if leading else 0)
        if leading:
            log.info("leader election: %s is the leader", self.election.identity)
        else:
            self._renewed_at = None
            log.warning("leader election: %s lost the Lease; standing by", self.election.identity)
        self._changed.set()

    # -- one step (blocking: runs in a thread) -----------------------------------

    def try_acquire_or_renew(self) -> bool:
        e, started = self.election, self.clock()
        current = self._get(e.renew_deadline)
        if current is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": e.name, "namespace": e.namespace},
                "spec": self._spec(transitions=0, acquired=_now()),
            }
            return self._write("POST", self.path.rsplit("/", 1)[0], body, started)
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = tuple(sorted((k, str(v)) for k, v in spec.items()))
        if record != self._observed:  # timed from when we saw it, on our own clock
            self._observed, self._observed_at = record, self.clock()
        duration = float(spec.get("leaseDurationSeconds") or e.lease_duration)
        if holder and holder != e.identity:
            self._renewed_at = None  # someone else holds it: never write on an old belief
            if self._observed_at + duration > self.clock():
                return False
            log.info("leader election: the Lease of %s expired; taking it over", holder)
        transitions = int(spec.get("leaseTransitions") or 0)
        ours = holder == e.identity
        current["spec"] = self._spec(
            transitions=transitions if ours else transitions + 1,
            acquired=str(spec.get("acquireTime") or _now()) if ours else _now(),
        )
        return self._write("PUT", self.path, current, started)

    def _get(self, timeout: float) -> dict[str, Any] | None:
        try:
            lease: dict[str, Any] = self.kube.request("GET", self.path, timeout=timeout)
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return lease

    def _spec(self, transitions: int, acquired: str) -> dict[str, Any]:
        return {
            "holderIdentity": self.election.identity,
            "leaseDurationSeconds": math.ceil(self.election.lease_duration),
            "acquireTime": acquired,
            "renewTime": _now(),
            "leaseTransitions": transitions,
        }

    def _write(self, method: str, path: str, body: dict[str, Any], started: float) -> bool:
        try:
            written = self.kube.request(method, path, body, timeout=self.election.renew_deadline)
        except ApiError as err:
            if err.status in (409, 422):  # someone else wrote first (resourceVersion) or created it
                return False
            raise
        spec = written.get("spec") or {}
        self._observed = tuple(sorted((k, str(v)) for k, v in spec.items()))
        self._observed_at = started
        self._renewed_at = started
        return True

    async def release(self) -> None:
        """On shutdown: stop writing, then hand the Lease back so a standby need not wait."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        self._changed.set()
        LEADING.set(0)

        def give_back() -> None:
            current = self._get(self.election.retry_period)
            holder = ((current or {}).get("spec") or {}).get("holderIdentity")
            if current and holder == self.election.identity:
                current["spec"].update(holderIdentity="", leaseDurationSeconds=1, renewTime=_now())
                self.kube.request("PUT", self.path, current, timeout=self.election.retry_period)

        with contextlib.suppress(Exception):
            await asyncio.to_thread(give_back)
            log.info("leader election: %s released the Lease", self.election.identity)


async def while_leading(elector: LeaderElector, work: Callable[[], Awaitable[None]]) -> None:
    """Run WORK only while leading: started on becoming leader, cancelled on losing it."""
    while True:
        await elector.wait_leading()
        task = asyncio.ensure_future(work())
        lost = asyncio.ensure_future(elector.wait_lost())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, lost):
                pending.cancel()
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


class FencedKube(Kube):
    """The operator's client for writes: every attempt of every write verb (POST, PUT,
    PATCH, DELETE) needs the Lease first. Reads go through unchecked.

    The fence is `Kube.request`'s guard, which runs before each attempt — the first and
    each repeat after a 429's Retry-After — and nothing below it repeats a request (the
    client's urllib3 retries are off, see `kube.client_for`). The elector's own Lease
    writes use the unfenced client: they are how the Lease is held.
    """

    def __init__(self, kube: Kube, elector: LeaderElector) -> None:
        super().__init__(kube.client)
        self.inner, self.elector = kube, elector

    def _check(self, method: str, path: str) -> None:
        if method != "GET" and not self.elector.may_write():
            raise NotLeader(f"not the leader: {method} {path} refused")

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        self._check(method, path)  # also when the inner client is not a Kube (tests' fakes)
        kwargs["guard"] = self._check
        return self.inner.request(method, path, *args, **kwargs)
