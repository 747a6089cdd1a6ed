"""The concurrency model under stress: watch events on one thread (the event loop's place),
write answers from many reconcile threads, claim look-ups from many more, all for the same
objects at once.

The store must never go back in version (the test's fake API server knows the true order of
the versions it hands out; the store may only compare them for equality), and the index must
never raise while the claims it is read for change. The interpreter is made to switch threads
as often as it can, so a check-then-act or an iteration over a set being changed shows up.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portico.controller.memo import Answers
from portico.controller.operator import Operator
from portico.settings import Settings

PORTALS = 8
WRITES = 100  # answers per portal's reconcile thread


class NoApi:
    """Event handling and write answers make no request."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"called the API ({name})")


def portal(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {
            "name": name,
            "namespace": "team",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": f"2026-11-30T10:00:{len(name):02d}Z",
        },
        "spec": {
            "displayName": "Web",
            "subdomain": "shared",  # every portal claims it: each event re-indexes a shared set
            "instanceRef": {"name": "crm"},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "Community",
        },
    }


class FakeServer:
    """Hands out resourceVersions in order and keeps, per object, what the watch will deliver."""

    def __init__(self, opaque: bool, writes: int = WRITES) -> None:
        self.writes = writes
        self.lock = threading.Lock()
        self.count = itertools.count(1)
        self.order: dict[str, int] = {}  # version → its place in time (the test's knowledge)
        self.log: list[tuple[str, dict[str, Any]]] = []  # (kind, object) in commit order
        self.opaque = opaque

    def commit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            n = next(self.count)
            # Opaque: what an API server backed by something other than etcd may send.
            version = f"v{n:x}-{random.randrange(1 << 16):04x}" if self.opaque else str(n)
            self.order[version] = n
            out = copy.deepcopy(obj)
            out["metadata"]["resourceVersion"] = version
            self.log.append((kind, out))
            return copy.deepcopy(out)


def config_map(name: str, portal_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{name}-config",
            "namespace": "team",
            "labels": {
                "portico.dev/portal": portal_name,
                "app.kubernetes.io/managed-by": "portico",
            },
            "ownerReferences": [{"uid": f"uid-{portal_name}", "controller": True}],
        },
        "data": {"n": "0"},
    }


@pytest.fixture
def busy_interpreter() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


class Run:
    """The portals, their ConfigMaps, and the threads that work on them at once."""

    def __init__(self, opaque: bool, writes: int = WRITES) -> None:
        self.writes = writes
        self.op = Operator.build(Settings(), NoApi())
        self.server = FakeServer(opaque)
        self.names = [f"p{i}" for i in range(PORTALS)]
        for name in self.names:
            self.op.portal_event("ADDED", self.server.commit("Portal", portal(name)))
            child = self.server.commit("ConfigMap", config_map(name, name))
            self.op.child_event("ConfigMap", "ADDED", child)
        self.delivered = len(self.server.log)
        self.failures: list[str] = []
        self.done = threading.Event()

    def version_of(self, kind: str, name: str) -> int:
        """The place in time of the version the store holds (the test's knowledge only)."""
        if kind == "Portal":
            obj = self.op.store.portals.get(("team", name))
        else:
            owned = self.op.store.owned("team", name, f"uid-{name}")
            obj = owned.get(("ConfigMap", f"{name}-config"))
        assert obj is not None
        return self.server.order[obj["metadata"]["resourceVersion"]]

    def reconcile(self, name: str) -> None:
        """One portal's reconciles, one after another (the queue never runs two at once):
        each writes the ConfigMap and the status and keeps the answers."""
        for n in range(self.writes):
            status = self.op.store.portals[("team", name)]
            status["status"] = {"n": n}
            child = config_map(name, name)
            child["data"]["n"] = str(n)
            Answers(self.op.store).written("ConfigMap", self.server.commit("ConfigMap", child))
            Answers(self.op.store).written("Portal", self.server.commit("Portal", status))

    def someone_else(self) -> None:
        """Other writers (a user, a controller): their changes reach us by the watch only."""
        while not self.done.is_set():
            name = random.choice(self.names)
            body = self.op.store.portals[("team", name)]
            body["metadata"]["annotations"] = {"touched": str(random.random())}
            self.server.commit("Portal", body)

    def watch(self) -> None:
        """The event loop's part: every committed version, in order, as a watch event."""
        log = self.server.log
        while not self.done.is_set() or self.delivered < len(log):
            if self.delivered == len(log):
                continue
            if random.random() < 0.5:
                time.sleep(0)  # the watch trails the answers, as over a real connection
            kind, obj = log[self.delivered]
            self.delivered += 1
            if kind == "Portal":
                self.op.portal_event("MODIFIED", copy.deepcopy(obj))
            else:
                self.op.child_event(kind, "MODIFIED", copy.deepcopy(obj))

    def come_and_go(self) -> None:
        """Portals created and deleted on the same subdomain: the claim set grows and shrinks."""
        for n in itertools.count():
            if self.done.is_set():
                return
            body = self.server.commit("Portal", portal(f"passing-{n % 3}"))
            self.op.portal_event("ADDED", body)
            self.op.portal_event("DELETED", body)

    def sample(self) -> None:
        """What any reader sees of each object only ever moves forward."""
        seen: dict[tuple[str, str], int] = {}
        while not self.done.is_set():
            for name in self.names:
                for kind in ("Portal", "ConfigMap"):
                    now = self.version_of(kind, name)
                    if now < seen.get((kind, name), 0):
                        raise AssertionError(
                            f"{kind} {name} went back: {seen[(kind, name)]} → {now}"
                        )
                    seen[(kind, name)] = now

    def look_up(self) -> None:
        while not self.done.is_set():
            self.op.index.subdomain_owner("shared")
            self.op.index.host_owner("")
            self.op.store.owned("team", random.choice(self.names), "uid-x")

    def go(self, *background: Callable[[], None]) -> None:
        """Every portal's reconciles at once, BACKGROUND beside them until they are done."""
        workers = [self._thread(self.reconcile, name) for name in self.names]
        others = [self._thread(fn) for fn in background]
        for thread in workers + others:
            thread.start()
        for thread in workers:
            thread.join()
        self.done.set()
        for thread in others:
            thread.join()

    def _thread(self, fn: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                fn(*args)
            except Exception as err:
                self.failures.append(f"{fn.__name__}: {type(err).__name__}: {err}")
                self.done.set()

        return threading.Thread(target=run)


@pytest.mark.parametrize("opaque", [False, True], ids=["numeric", "opaque"])
def test_the_store_never_goes_back_in_version(busy_interpreter: None, opaque: bool) -> None:
    run = Run(opaque)
    run.go(run.watch, run.someone_else, run.sample)
    assert not run.failures, run.failures[:5]
    # The watch delivered everything: the store holds each object's last version.
    last: dict[tuple[str, str], int] = {}
    for kind, obj in run.server.log:
        last[(kind, obj["metadata"]["name"])] = run.server.order[obj["metadata"]["resourceVersion"]]
    for name in run.names:
        assert run.version_of("Portal", name) == last[("Portal", name)]
        assert run.version_of("ConfigMap", name) == last[("ConfigMap", f"{name}-config")]


def test_the_index_never_raises_while_claims_change(busy_interpreter: None) -> None:
    run = Run(opaque=False, writes=3 * WRITES)
    run.go(run.watch, run.come_and_go, run.look_up, run.look_up)
    assert not run.failures, run.failures[:5]


class Listing:
    """The lists priming reads: one Portal, nothing else."""

    def each(self, kind: str, *_: Any) -> list[dict[str, Any]]:
        return [portal("web")] if kind == "Portal" else []

    def get(self, *_: Any) -> None:
        return None  # no claim reservations kept yet

    def served(self, kind: str) -> bool:
        return True


def test_priming_hands_its_keys_to_the_loop() -> None:
    """The lists run in a thread; the queue (and its asyncio.Event) is touched on the loop only."""
    op = Operator.build(Settings(), Listing())  # type: ignore[arg-type]
    added: list[tuple[Any, bool, threading.Thread]] = []
    original = op.queue.add

    def add(key: Any, delay: float = 0.0, routine: bool = False) -> None:
        added.append((key, routine, threading.current_thread()))
        original(key, delay, routine)

    op.queue.add = add  # type: ignore[method-assign]

    async def prime() -> threading.Thread:
        await op.prime(["ConfigMap"])
        await asyncio.sleep(0)  # the callbacks handed over last
        return threading.current_thread()

    loop_thread = asyncio.run(prime())
    assert [(key, routine) for key, routine, _ in added] == [
        (("Portal", "team", "web"), True),
        (("PortalInstance", "crm"), True),
    ]
    assert {thread for *_, thread in added} == {loop_thread}
    assert ("Portal", "team", "web") in op.queue._routine
