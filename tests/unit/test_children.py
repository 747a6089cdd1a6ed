"""Skipping writes: a child is re-applied only when it no longer matches what was applied."""

from __future__ import annotations

import copy

from portico.core.children import covers, up_to_date, with_hash

DESIRED = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}},
    "spec": {"ports": [{"name": "http", "port": 80}], "selector": {"x": "y"}},
}


def server_copy(manifest: dict) -> dict:
    """What the API server hands back: our fields plus its own defaults."""
    stored = copy.deepcopy(manifest)
    stored["metadata"]["uid"] = "u"
    stored["spec"]["clusterIP"] = "10.0.0.1"
    stored["spec"]["ports"][0]["protocol"] = "TCP"
    return stored


def test_unchanged_child_is_up_to_date() -> None:
    applied = with_hash(DESIRED)
    assert up_to_date(with_hash(DESIRED), server_copy(applied))


def test_hand_edit_or_new_desire_is_not() -> None:
    stored = server_copy(with_hash(DESIRED))
    edited = copy.deepcopy(stored)
    edited["spec"]["selector"]["x"] = "z"
    assert not up_to_date(with_hash(DESIRED), edited)
    changed = copy.deepcopy(DESIRED)
    changed["metadata"]["labels"] = {}
    # The stored object still covers the smaller desire; the hash says the label must go.
    assert covers(stored, changed)
    assert not up_to_date(with_hash(changed), stored)


def test_missing_child_is_not_up_to_date() -> None:
    assert not up_to_date(with_hash(DESIRED), None)


def test_covers_is_lenient_on_int_or_string_and_strict_on_lists() -> None:
    assert covers({"cpu": "1"}, {"cpu": 1})
    assert covers({"cpu": "500m", "memory": "1Gi"}, {"cpu": "0.5", "memory": "1024Mi"})
    assert not covers({"cpu": "500m"}, {"cpu": "1"})
    assert not covers({"name": "http"}, {"name": "https"})
    assert not covers({"l": [1, 2]}, {"l": [1]})
    assert not covers({"b": "true"}, {"b": True})
