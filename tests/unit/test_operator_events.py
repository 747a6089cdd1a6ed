"""Watch events → store, index and queue: what is queued, and what a deletion leaves behind."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from portico.controller import metrics
from portico.controller.memo import Answers
from portico.controller.reconcile import Outcome
from tests.support.events import operator, portal


def config_map() -> dict[str, Any]:
    """Portico's ConfigMap of portal `web` (listed items carry no kind)."""
    return {
        "metadata": {
            "name": "web-config",
            "namespace": "team",
            "resourceVersion": "5",
            "labels": {"portico.dev/portal": "web", "app.kubernetes.io/managed-by": "portico"},
            "ownerReferences": [{"uid": "uid-web", "controller": True}],
        }
    }


def test_a_status_only_change_queues_nothing() -> None:
    op = operator()
    body = portal()
    op.portal_event("ADDED", body)
    assert ("Portal", "team", "web") in op.queue
    op.queue.forget(("Portal", "team", "web"))
    ours = copy.deepcopy(body)
    ours["metadata"]["resourceVersion"] = "11"
    ours["status"] = {"phase": "Ready"}
    op.portal_event("MODIFIED", ours)
    assert ("Portal", "team", "web") not in op.queue
    assert op.store.portals[("team", "web")]["status"] == {"phase": "Ready"}
    edited = copy.deepcopy(ours)
    edited["metadata"].update(generation=2, resourceVersion="20")
    op.portal_event("MODIFIED", edited)
    assert ("Portal", "team", "web") in op.queue


def test_an_older_event_never_replaces_what_a_write_returned() -> None:
    """Versions are opaque: the watch's own order says what is older than a write's answer."""
    op = operator()
    op.portal_event("ADDED", portal(generation=1))
    answer = portal(generation=2)
    answer["metadata"]["resourceVersion"] = "b"  # not a number: only equality means anything
    Answers(op.store).written("Portal", answer)
    late = portal(generation=1)
    late["metadata"]["resourceVersion"] = "z"  # committed before our write, delivered after it
    op.portal_event("MODIFIED", late)
    assert op.store.portals[("team", "web")]["metadata"]["generation"] == 2
    op.portal_event("MODIFIED", copy.deepcopy(answer))  # the echo of our write
    after = portal(generation=3)
    after["metadata"]["resourceVersion"] = "a"
    op.portal_event("MODIFIED", after)  # after the echo, every event is news
    assert op.store.portals[("team", "web")]["metadata"]["generation"] == 3
    Answers(op.store).written("Portal", answer)  # an answer the watch has moved past: not taken
    assert op.store.portals[("team", "web")]["metadata"]["generation"] == 3


def test_a_relist_ends_the_wait_for_an_echo() -> None:
    """A watch that starts over lists the newest version; our write's echo never comes."""
    op = operator()
    op.portal_event("ADDED", portal(generation=1))
    answer = portal(generation=2)
    answer["metadata"]["resourceVersion"] = "b"
    Answers(op.store).written("Portal", answer)
    listed = portal(generation=3)
    listed["metadata"]["resourceVersion"] = "c"
    op.portal_event("", listed)
    later = portal(generation=4)
    later["metadata"]["resourceVersion"] = "d"
    op.portal_event("MODIFIED", later)
    assert op.store.portals[("team", "web")]["metadata"]["generation"] == 4


def test_a_deleted_portal_leaves_nothing_and_wakes_the_next_claimant() -> None:
    op = operator()
    op.portal_event("ADDED", portal("a", subdomain="shared"))
    op.portal_event("ADDED", portal("bb", subdomain="shared"))
    metrics.CERTIFICATE_EXPIRY.labels(namespace="team", portal="a").set(5)
    op.phases[("team", "a")] = "Ready"
    for key in list(op.queue._due):
        op.queue.forget(key)
    op.portal_event("DELETED", portal("a", subdomain="shared"))
    assert ("team", "a") not in op.store.portals and ("team", "a") not in op.index.entries
    assert ("team", "a") not in op.phases
    assert ("Portal", "team", "a") not in op.queue
    assert ("Portal", "team", "bb") in op.queue  # it waited on the subdomain
    owner = op.index.subdomain_owner("shared")
    assert owner is not None and owner.name == "bb"
    samples = [s.labels for m in metrics.CERTIFICATE_EXPIRY.collect() for s in m.samples]
    assert {"namespace": "team", "portal": "a"} not in samples


def test_children_are_indexed_by_portal_and_owner() -> None:
    op = operator()
    op.portal_event("ADDED", portal())
    child = config_map()
    op.child_event("ConfigMap", "ADDED", child)
    assert ("Portal", "team", "web") in op.queue
    owned = op.store.owned("team", "web", "uid-web")
    assert list(owned) == [("ConfigMap", "web-config")]
    assert owned[("ConfigMap", "web-config")]["apiVersion"] == "v1"
    assert op.store.owned("team", "web", "uid-other") == {}
    op.child_event("ConfigMap", "DELETED", child)
    assert op.store.owned("team", "web", "uid-web") == {}


def test_a_second_listing_of_known_objects_queues_nothing() -> None:
    """After a restart, priming and then Kopf list every object: the fleet is queued once."""
    op = operator()
    body = portal()
    child = config_map()
    secret = {"metadata": {**copy.deepcopy(child["metadata"]), "name": "web-instance"}}
    op.portal_event("", body)
    op.child_event("ConfigMap", "", child)
    op.secret_event("", secret)
    op.queue.forget(("Portal", "team", "web"))
    op.portal_event("", copy.deepcopy(body))
    op.child_event("ConfigMap", "", copy.deepcopy(child))
    op.secret_event("", copy.deepcopy(secret))
    assert ("Portal", "team", "web") not in op.queue
    # A watch event of the same version still counts (it may be the echo of our own write),
    # and a listing of a newer version is news.
    op.child_event("ConfigMap", "MODIFIED", copy.deepcopy(child))
    assert ("Portal", "team", "web") in op.queue
    op.queue.forget(("Portal", "team", "web"))
    child["metadata"]["resourceVersion"] = "6"
    op.child_event("ConfigMap", "", child)
    assert ("Portal", "team", "web") in op.queue


def test_what_priming_finds_is_routine_and_a_later_event_is_urgent() -> None:
    op = operator()
    op.priming = True
    op.portal_event("", portal())
    op.priming = False
    assert ("Portal", "team", "web") in op.queue._routine
    edited = portal(generation=2)
    op.portal_event("MODIFIED", edited)
    assert ("Portal", "team", "web") in op.queue
    assert ("Portal", "team", "web") not in op.queue._routine


def test_a_reactivated_portal_claims_from_its_reclaim_even_through_our_own_write() -> None:
    """A Deprovisioned portal's claim is the youngest until it takes its names back; the
    status write that records when (status.reclaimedAt) moves its claim time in the index,
    also when the watch brings only the echo of that write."""
    op = operator()
    body = portal()
    body["status"] = {"phase": "Deprovisioned", "releasedAt": "2026-12-01T00:00:00Z"}
    op.portal_event("ADDED", body)
    assert op.index.entries[("team", "web")].claimant.created == "~reactivating"
    answer = copy.deepcopy(body)
    answer["metadata"]["resourceVersion"] = "b"
    answer["status"] = {"phase": "Ready", "reclaimedAt": "2026-12-02T00:00:00Z"}
    Answers(op.store).written("Portal", answer)
    op.portal_event("MODIFIED", copy.deepcopy(answer))  # the echo of our write
    assert op.index.entries[("team", "web")].claimant.created == "2026-12-02T00:00:00Z"


def test_the_observer_knows_how_many_portals_are_configuring() -> None:
    """Status pacing spreads progress over the portals configuring at once: the count
    follows every phase change, and a deleted portal leaves it."""
    op = operator()
    phases = {"a": "Configuring", "b": "Configuring", "c": "Ready"}
    op.reconciler.portal = lambda namespace, name: Outcome(phases[name])  # type: ignore[method-assign]
    for name in phases:
        op.portal_event("ADDED", portal(name, subdomain=name))

    async def reconcile(*names: str) -> None:
        for name in names:
            await op.work(("Portal", "team", name))

    asyncio.run(reconcile("a", "b", "c"))
    assert op.observer.configuring == 2
    phases["a"] = "Ready"
    asyncio.run(reconcile("a"))
    assert op.observer.configuring == 1
    op.portal_event("DELETED", portal("b", subdomain="b"))
    assert op.observer.configuring == 0
