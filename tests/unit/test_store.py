"""The store keeps objects packed: what comes out is what went in, minus managed field sets,
never an older version, and never shared with the caller."""

from __future__ import annotations

import copy
from typing import Any

from portico.controller.store import Store


def child(version: str, data: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-config",
            "namespace": "team",
            "resourceVersion": version,
            "labels": {"portico.dev/portal": "web", "app.kubernetes.io/managed-by": "portico"},
            "ownerReferences": [{"uid": "uid-web", "controller": True}],
            "managedFields": [
                {"manager": "portico", "operation": "Apply", "fieldsV1": {"f:data": {}}}
            ],
        },
        "data": {"portal.json": data},
    }


def test_a_child_comes_back_whole_but_for_the_managed_field_sets() -> None:
    store = Store()
    store.put_child("ConfigMap", child("5", "ünïcode ✓"))
    got = store.owned("team", "web", "uid-web")[("ConfigMap", "web-config")]
    expected = copy.deepcopy(child("5", "ünïcode ✓"))
    del expected["metadata"]["managedFields"][0]["fieldsV1"]  # who and when stay
    assert got == {**expected, "apiVersion": "v1", "kind": "ConfigMap"}


def test_an_older_version_never_replaces_a_newer_one() -> None:
    """Until the watch echoes our write, its events are older; versions compare only as equal."""
    store = Store()
    store.put_child("ConfigMap", child("ab", "ours"), "answer")
    store.put_child("ConfigMap", child("zz", "late event"))
    got = store.owned("team", "web", "uid-web")[("ConfigMap", "web-config")]
    assert got["data"] == {"portal.json": "ours"}
    store.put_child("ConfigMap", child("ab", "ours"))  # the echo
    store.put_child("ConfigMap", child("0", "someone else's change"))  # news after the echo
    store.put_child("ConfigMap", child("ab", "ours"), "answer")  # held before: old
    got = store.owned("team", "web", "uid-web")[("ConfigMap", "web-config")]
    assert got["data"] == {"portal.json": "someone else's change"}


def test_what_a_reconcile_reads_is_its_own_copy() -> None:
    store = Store()
    portal = {"metadata": {"name": "web", "namespace": "team", "resourceVersion": "3"}}
    store.put_portal(portal)
    store.portals[("team", "web")]["metadata"]["name"] = "changed by a reader"
    assert store.portals[("team", "web")]["metadata"]["name"] == "web"
    assert list(store.portals) == [("team", "web")] and len(store.portals) == 1
    store.forget_portal("team", "web")
    assert ("team", "web") not in store.portals and store.portals.get(("team", "web")) is None


def test_the_echo_of_a_write_is_not_packed_again() -> None:
    store = Store()
    store.put_child("ConfigMap", child("7", "new"))
    packed = store.children["ConfigMap"].packed[("team", "web-config")]
    store.put_child("ConfigMap", child("7", "new"))  # the watch event of the same version
    assert store.children["ConfigMap"].packed[("team", "web-config")] is packed
