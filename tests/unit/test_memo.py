"""The memo that keeps a fleet at rest from being decided again: its fingerprint moves with
every input a reconcile reads, and a remembered decision lapses when a timer is due."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from unittest.mock import ANY

import pytest
import yaml

from portico.api import model, validation
from portico.controller import reconcile
from portico.controller.index import Index
from portico.controller.memo import MAX_AGE, Answers, Memo, fingerprint
from portico.controller.reconcile import Reconciler
from portico.controller.store import Store
from portico.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KEY = ("support", "contoso-support")


def portal_obj(version: str = "10") -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "examples" / "customer-customerselfservice.yaml").read_text())
    raw["metadata"].update(
        uid="uid-1", resourceVersion=version, creationTimestamp="2026-01-01T00:00:00Z"
    )
    return dict(raw)


def world() -> tuple[Store, Index]:
    store, index = Store(), Index()
    obj = portal_obj()
    store.put_portal(obj)
    defaulted, problems = validation.admit("Portal", obj)
    assert problems == []
    index.put(model.parse_portal(defaulted), "2026-01-01T00:00:00Z")
    store.put_child("ConfigMap", child("20"))
    return store, index


def child(version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "contoso-support-config",
            "namespace": "support",
            "resourceVersion": version,
            "labels": {"portico.dev/portal": "contoso-support"},
            "ownerReferences": [{"uid": "uid-1", "controller": True}],
        },
        "data": {},
    }


def fp(store: Store, index: Index) -> Any:
    return fingerprint(store, index, frozenset(), *KEY)


def test_the_fingerprint_moves_with_every_input() -> None:
    store, index = world()
    before = fp(store, index)
    assert before is not None and fp(store, index) == before  # stable at rest
    changes: list[Callable[[Store, Index], object]] = [
        lambda s, i: s.put_portal(portal_obj("11")),  # spec, annotations or status
        lambda s, i: s.put_child("ConfigMap", child("21")),  # a child edited: drift
        lambda s, i: s.drop_child("ConfigMap", "support", "contoso-support-config"),
        lambda s, i: s.namespace_labels.__setitem__("support", {"team": "a"}),
        lambda s, i: s.put_instance({"metadata": {"name": "contoso-crm", "resourceVersion": "3"}}),
        lambda s, i: s.terminating.add("support"),
        lambda s, i: s.put_slice(
            {
                "metadata": {
                    "name": "s",
                    "namespace": "support",
                    "labels": {"portico.dev/portal": "contoso-support"},
                },
                "endpoints": [{"targetRef": {"name": "pod-1"}, "conditions": {"ready": True}}],
            }
        ),
    ]
    for change in changes:
        store, index = world()
        change(store, index)
        assert fp(store, index) != before, change


def test_the_portals_mail_login_is_an_input_of_every_portal() -> None:
    """Each portal holds a copy of it: a new password must be decided again, not skipped."""
    store, index = world()
    index.mail_secret = ("portico-system", "portal-mail")
    store.put_secret(mail_login("1"))
    before = fp(store, index)
    store.put_secret(mail_login("2"))
    assert fp(store, index) != before


def mail_login(version: str) -> dict[str, Any]:
    meta = {"name": "portal-mail", "namespace": "portico-system", "resourceVersion": version}
    return {"metadata": meta, "data": {"password": "c2VjcmV0"}}


def test_a_remembered_decision_lapses_when_its_inputs_move_or_a_timer_is_due() -> None:
    memo, key = Memo(), KEY
    memo.remember(key, ("v1",), "Ready", None)
    hit = memo.unchanged(key, ("v1",))
    assert hit is not None and hit[0] == "Ready" and MAX_AGE - 5 < hit[1] <= MAX_AGE
    assert memo.unchanged(key, ("v2",)) is None
    assert memo.unchanged(key, None) is None
    memo.remember(key, ("v1",), "Configuring", 0.05)  # e.g. a held status write
    assert memo.unchanged(key, ("v1",)) is not None
    time.sleep(0.06)
    assert memo.unchanged(key, ("v1",)) is None
    memo.forget(key)
    assert memo.unchanged(key, ("v1",)) is None


def status_answer(version: str) -> dict[str, Any]:
    obj = portal_obj(version)
    obj["status"] = {"phase": "Configuring"}
    return obj


def test_a_reconcile_that_wrote_is_remembered_with_its_answers() -> None:
    """Its own answers (a status, a changed child, a created one, a deleted one) are all
    that moved: the inputs before it, seen through them, are the ones it decided on."""
    store, index = world()
    before = fp(store, index)
    answers = Answers(store)
    answers.written("Portal", status_answer("11"))
    answers.written("ConfigMap", child("21"))
    created = child("22")
    created["metadata"]["name"] = "contoso-support-pages"
    answers.written("ConfigMap", created)
    answers.deleted("ConfigMap", "support", "contoso-support-pages")
    answers.written("ConfigMap", created)  # written again: the first "before" still counts
    assert fingerprint(store, index, frozenset(), *KEY, answers) == before
    after = fp(store, index)
    assert after != before
    # The watch's echoes of those writes change nothing the memo holds.
    store.put_portal(status_answer("11"))
    store.put_child("ConfigMap", child("21"))
    assert fp(store, index) == after


def test_a_write_whose_watch_event_came_before_its_answer_is_remembered_too() -> None:
    """Under load the watch may deliver our write before the thread that made it reads
    the answer: the version before the write is then the one kept before the event."""
    store, index = world()
    before = fp(store, index)
    answers = Answers(store)
    store.put_portal(status_answer("11"))  # the echo first
    store.put_child("ConfigMap", child("21"))
    created = child("22")
    created["metadata"]["name"] = "contoso-support-pages"
    store.put_child("ConfigMap", created)
    answers.written("Portal", status_answer("11"))  # then the answers
    answers.written("ConfigMap", child("21"))
    answers.written("ConfigMap", created)
    assert fingerprint(store, index, frozenset(), *KEY, answers) == before
    # An edit by someone else that came before our write is not ours to skip.
    store, index = world()
    before = fp(store, index)
    answers = Answers(store)
    store.put_child("ConfigMap", child("21"))  # theirs
    store.put_child("ConfigMap", child("22"))  # our write's event
    answers.written("ConfigMap", child("22"))
    assert fingerprint(store, index, frozenset(), *KEY, answers) != before


def test_a_change_that_landed_after_our_write_is_never_remembered_away() -> None:
    moves: list[Callable[[Store], object]] = [
        lambda s: s.put_child("ConfigMap", child("23")),  # someone edited what we wrote
        lambda s: s.drop_child("ConfigMap", "support", "contoso-support-config"),  # or deleted it
        lambda s: s.put_portal(portal_obj("12")),  # the Portal edited after our status
    ]
    for move in moves:
        store, index = world()
        before = fp(store, index)
        answers = Answers(store)
        answers.written("Portal", status_answer("11"))
        answers.written("ConfigMap", child("21"))
        store.put_child("ConfigMap", child("21"))  # our echo first: what comes next is news
        store.put_portal(status_answer("11"))
        move(store)
        assert fingerprint(store, index, frozenset(), *KEY, answers) != before, move


def test_an_answer_the_watch_had_moved_past_is_never_remembered() -> None:
    store, index = world()
    before = fp(store, index)
    store.put_child("ConfigMap", child("21"))  # another writer's change, seen by the watch
    answers = Answers(store)
    late = child("21")
    late["metadata"]["resourceVersion"] = "20"  # our answer, older than what is kept
    answers.written("ConfigMap", late)
    assert fingerprint(store, index, frozenset(), *KEY, answers) != before


def test_an_input_that_moved_before_our_write_is_never_remembered_away() -> None:
    """A foreign change between the fingerprint and the write: the write's "before" is not
    the fingerprint's, so the reconcile is not remembered (its event decides again)."""
    store, index = world()
    before = fp(store, index)
    store.put_child("ConfigMap", child("21"))
    answers = Answers(store)
    answers.written("ConfigMap", child("22"))
    assert fingerprint(store, index, frozenset(), *KEY, answers) != before


class Writes:
    """The writer's part of a reconcile: a status patch answered with the next version;
    MEANWHILE runs after it, as a watch event would land while the reconcile runs."""

    def __init__(self, store: Store) -> None:
        self.store, self.version, self.calls = store, 11, 0
        self.meanwhile: Callable[[], object] = lambda: None

    def carry_out(self, plan: Any, o: Any, written: Any, deleted: Any) -> int:
        self.calls += 1
        written("Portal", status_answer(str(self.version)))
        self.version += 1
        self.meanwhile()
        return 1


def reconciler(monkeypatch: pytest.MonkeyPatch) -> tuple[Reconciler, Writes, Store]:
    store, index = world()
    observer = SimpleNamespace(
        index=index,
        foreign={},
        dns=SimpleNamespace(next_in=lambda key: None),
        observe=lambda namespace, name, now: SimpleNamespace(),
    )
    plan = SimpleNamespace(
        phase="Configuring", requeue_after=None, dns_pending=False, certificate_expiry=None
    )
    monkeypatch.setattr(reconcile, "decide", lambda o, settings, now: plan)
    writes = Writes(store)
    return Reconciler(Settings(), store, cast(Any, observer), cast(Any, writes)), writes, store


def test_the_next_resync_after_a_writing_reconcile_decides_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, writes, store = reconciler(monkeypatch)
    assert rec.portal(*KEY).writes == 1
    store.put_portal(status_answer("11"))  # the echo of our status patch
    assert rec.portal(*KEY) == reconcile.Outcome("Configuring", requeue_after=ANY)
    assert writes.calls == 1
    store.put_child("ConfigMap", child("21"))  # drift: decided again
    rec.portal(*KEY)
    assert writes.calls == 2


def test_a_change_while_a_writing_reconcile_runs_is_decided_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec, writes, store = reconciler(monkeypatch)
    writes.meanwhile = lambda: store.put_child("ConfigMap", child("21"))
    rec.portal(*KEY)
    writes.meanwhile = lambda: None
    rec.portal(*KEY)
    assert writes.calls == 2
