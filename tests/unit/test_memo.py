"""The memo that keeps a fleet at rest from being decided again: its fingerprint moves with
every input a reconcile reads, and a remembered decision lapses when a timer is due."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from portico.api import model, validation
from portico.controller.index import Index
from portico.controller.memo import MAX_AGE, Memo, fingerprint
from portico.controller.store import Store

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
