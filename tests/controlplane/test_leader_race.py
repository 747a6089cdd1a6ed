"""The elector's lost race against a real API server: two candidates read the same Lease,
one writes first, the other's write carries a stale resourceVersion (or creates a Lease that
exists by then) and the API server answers 409. The loser does not lead and writes nothing.

The electors are the operator's own (`LeaderElector.try_acquire_or_renew`, the real client
on the admin kubeconfig); only the moment is arranged: the winner's write goes out just
before the loser's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portico.controller.kube import Kube, connect
from portico.controller.leader import Election, LeaderElector
from portico_dev import ControlPlane


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Racing(Kube):
    """A client whose next write (of METHOD) waits for another candidate's to go out first."""

    def __init__(self, kube: Kube) -> None:
        super().__init__(kube.client)
        self.before: tuple[str, Callable[[], None]] | None = None
        self.sent: list[tuple[str, int]] = []  # (method, status) of every Lease write

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if self.before is not None and self.before[0] == method:
            _, first = self.before
            self.before = None
            first()
        try:
            result = super().request(method, path, *args, **kwargs)
        except Exception as err:
            if method != "GET":
                self.sent.append((method, getattr(err, "status", 0)))
            raise
        if method != "GET":
            self.sent.append((method, 200))
        return result


def candidates(
    plane: ControlPlane, namespace: str, clock: Clock, *identities: str
) -> list[tuple[LeaderElector, Racing]]:
    out = []
    for identity in identities:
        kube = Racing(Kube(connect(str(plane.kubeconfig))))
        election = Election(namespace=namespace, identity=identity)
        out.append((LeaderElector(kube, election, clock=clock), kube))
    return out


def holder(kube: Kube, elector: LeaderElector) -> str:
    lease = kube.request("GET", elector.path)
    return str(lease["spec"]["holderIdentity"])


def test_two_candidates_create_the_lease_at_once(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Both find no Lease; the second POST is refused 409 AlreadyExists."""
    clock = Clock()
    (a, kube_a), (b, kube_b) = candidates(control_plane, namespace, clock, "a", "b")
    kube_b.before = ("POST", lambda: a.try_acquire_or_renew())
    assert not b.try_acquire_or_renew()
    assert kube_b.sent == [("POST", 409)]
    assert a.may_write() and not b.may_write()
    assert holder(kube_a, a) == "a"


def test_two_candidates_take_over_an_expired_lease_at_once(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Both see the holder's record unchanged for a whole lease duration; the second PUT
    carries the resourceVersion both read, and the API server refuses it with 409."""
    clock = Clock()
    (gone, _), (a, kube_a), (b, kube_b) = candidates(
        control_plane, namespace, clock, "gone", "a", "b"
    )
    assert gone.try_acquire_or_renew()
    assert not a.try_acquire_or_renew() and not b.try_acquire_or_renew()  # held: they wait
    clock.now += a.election.lease_duration + 1  # "gone" never renewed
    kube_b.before = ("PUT", lambda: a.try_acquire_or_renew())
    assert not b.try_acquire_or_renew()
    assert kube_b.sent == [("PUT", 409)]
    assert kube_a.sent == [("PUT", 200)]
    assert a.may_write() and not b.may_write()
    lease = kube_a.request("GET", a.path)
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseTransitions"] == 1
    # b now sees a's fresh record: it waits a whole lease duration again, and a renews.
    clock.now += 2
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    assert kube_b.sent == [("PUT", 409)]  # b wrote nothing more
