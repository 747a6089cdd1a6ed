"""Leader election against an in-memory Lease store with the API server's concurrency rules."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

from portico.controller.kube import ApiError, Kube
from portico.controller.leader import Election, FencedKube, LeaderElector, NotLeader, while_leading
from portico.settings import Settings, SettingsError

PATH = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/portico-leader"


class Leases(Kube):
    """One Lease, with resourceVersion checks (409 on a stale update or a second create)."""

    def __init__(self) -> None:
        super().__init__(kubernetes.client.ApiClient())
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    def request(self, method: str, path: str, body: Any = None, *_: Any, **__: Any) -> Any:
        if self.down:
            raise OSError("connection refused")
        if method == "GET":
            assert path == PATH
            if self.lease is None:
                raise ApiError(404, "NotFound", "leases.coordination.k8s.io not found")
            return copy.deepcopy(self.lease)
        if method == "POST":
            assert path == PATH.rsplit("/", 1)[0]
            if self.lease is not None:
                raise ApiError(409, "AlreadyExists", "already exists")
        else:
            assert method == "PUT" and path == PATH
            assert self.lease is not None
            if body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "the object has been modified")
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str:
        assert self.lease is not None
        return str(self.lease["spec"]["holderIdentity"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(
    store: Leases, clock: Callable[[], float], identity: str, **timings: float
) -> LeaderElector:
    election = Election(namespace="ops", identity=identity, **timings)
    return LeaderElector(store, election, clock=clock)


def test_the_first_candidate_creates_the_lease_and_leads() -> None:
    store, clock = Leases(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    assert a.try_acquire_or_renew() and a.is_leader
    assert store.holder == "a" and store.lease is not None
    assert store.lease["spec"]["leaseDurationSeconds"] == 15
    assert store.lease["spec"]["leaseTransitions"] == 0
    assert not b.try_acquire_or_renew() and not b.is_leader


def test_a_standby_takes_over_only_after_a_whole_lease_duration_unchanged() -> None:
    store, clock = Leases(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    for _ in range(20):  # renewals keep changing the record: b never takes over
        clock.now += 2
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    # a dies: b's clock starts at the last record it saw
    clock.now += 14.9
    assert not b.try_acquire_or_renew()
    clock.now += 0.2
    assert b.try_acquire_or_renew() and b.is_leader
    assert store.holder == "b" and store.lease is not None
    assert store.lease["spec"]["leaseTransitions"] == 1
    # a, were it alive after all, sees another holder and refuses to write at once
    assert not a.try_acquire_or_renew() and not a.is_leader


def test_a_leader_that_cannot_renew_stops_writing_before_the_lease_can_be_taken() -> None:
    store, clock = Leases(), Clock()
    a, b = elector(store, clock, "a"), elector(store, clock, "b")
    a.try_acquire_or_renew()
    renewed = clock.now
    b.try_acquire_or_renew()  # b sees the record at the same moment (the worst case)
    clock.now = renewed + 9.9
    assert a.may_write()
    clock.now = renewed + 10.0  # the renew deadline
    assert not a.may_write()
    assert not b.try_acquire_or_renew()  # and the Lease is still a's for 5 more seconds
    clock.now = renewed + 15.1
    assert b.try_acquire_or_renew()


def test_a_conflicting_update_is_a_lost_race_not_an_error() -> None:
    """Two candidates take over an expired Lease at once: the second write carries the
    resourceVersion both read, is refused 409, and its elector does not lead. (Against a
    real API server: tests/controlplane/test_leader_race.py.)"""
    store, clock = Leases(), Clock()
    gone, a, b = (elector(store, clock, name) for name in ("gone", "a", "b"))
    assert gone.try_acquire_or_renew()
    assert not a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.now += 16  # "gone" never renewed: expired for both
    b_store = Racing(store, first=lambda: a.try_acquire_or_renew())
    b.kube = b_store
    assert not b.try_acquire_or_renew()
    assert b_store.refused == [409]
    assert a.is_leader and not b.is_leader and store.holder == "a"


class Racing(Kube):
    """B's view of the same Leases: FIRST runs just before its next PUT goes out."""

    def __init__(self, store: Leases, first: Callable[[], object] | None) -> None:
        super().__init__(store.client)
        self.store, self.first = store, first
        self.refused: list[int] = []

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if method == "PUT" and self.first is not None:
            first, self.first = self.first, None
            first()
        try:
            return self.store.request(method, path, *args, **kwargs)
        except ApiError as err:
            self.refused.append(err.status)
            raise


def test_a_fence_refuses_writes_unless_leading() -> None:
    store, clock = Leases(), Clock()
    a = elector(store, clock, "a")
    fenced = FencedKube(store, a)
    with pytest.raises(NotLeader):
        fenced.request("PUT", PATH, {"metadata": {}})
    a.try_acquire_or_renew()
    fenced.request("PUT", PATH, copy.deepcopy(store.lease))
    clock.now += 10
    with pytest.raises(NotLeader):
        fenced.request("PUT", PATH, copy.deepcopy(store.lease))


def test_settings_and_identity() -> None:
    settings = Settings.from_env({"PORTICO_LEADER_ELECTION": "true"})
    assert settings.leader_election
    assert (
        settings.leader_election_lease_duration,
        settings.leader_election_renew_deadline,
        settings.leader_election_retry_period,
    ) == (15.0, 10.0, 2.0)
    election = Election.from_settings(settings, {"POD_NAME": "portico-7f9-abc"})
    assert (election.identity, election.name) == ("portico-7f9-abc", "portico-leader")
    assert election.namespace == "default"  # no service account file outside a pod
    assert "-" in Election.from_settings(settings, {}).identity  # <hostname>-<pid>
    named = Settings.from_env({"PORTICO_LEADER_ELECTION_NAMESPACE": "ops"})
    assert Election.from_settings(named, {}).namespace == "ops"
    with pytest.raises(SettingsError, match="RENEW_DEADLINE"):
        Settings.from_env({"PORTICO_LEADER_ELECTION_RENEW_DEADLINE": "20"})


@pytest.mark.asyncio
async def test_work_runs_only_while_leading_and_moves_on_failure() -> None:
    store = Leases()
    timings = {"lease_duration": 0.6, "renew_deadline": 0.4, "retry_period": 0.1}
    a = elector(store, time.monotonic, "a", **timings)
    b = elector(store, time.monotonic, "b", **timings)
    running: list[str] = []

    async def work(name: str) -> None:
        running.append(name)
        try:
            await asyncio.sleep(3600)
        finally:
            running.remove(name)

    tasks = [asyncio.create_task(a.run())]
    tasks.append(asyncio.create_task(while_leading(a, lambda: work("a"))))
    await asyncio.wait_for(a.wait_leading(), 2)
    tasks += [
        asyncio.create_task(b.run()),
        asyncio.create_task(while_leading(b, lambda: work("b"))),
    ]
    await asyncio.sleep(0.8)
    assert running == ["a"] and store.holder == "a"

    original = a.kube
    a.kube = Leases()  # a is cut off from the Lease: every try fails
    a.kube.down = True
    await asyncio.wait_for(a.wait_lost(), 1)
    await asyncio.sleep(0.05)
    assert "a" not in running
    await asyncio.wait_for(b.wait_leading(), 2)
    await asyncio.sleep(0.05)
    assert running == ["b"] and store.holder == "b"

    a.kube = original
    for task in tasks[2:]:  # b shuts down cleanly and hands the Lease back ...
        task.cancel()
    await b.release()
    assert store.holder == "" and not running
    await asyncio.wait_for(a.wait_leading(), 0.5)  # ... so a need not wait out the lease
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
