"""Skipping writes: a child is re-applied only when it no longer matches what was applied."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from portico.api import validation
from portico.api.model import Portal, PortalInstance, parse_instance, parse_portal
from portico.core import render
from portico.core.children import RENDERS_KEPT, Renders, covers, up_to_date, with_hash
from portico.core.render import Facts
from portico.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

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


def _portal(name: str) -> Portal:
    raw = yaml.safe_load((EXAMPLES / "customer-customerselfservice.yaml").read_text())
    raw["metadata"]["name"] = name
    return parse_portal(validation.admit("Portal", raw)[0])


def _instance() -> PortalInstance:
    raw = yaml.safe_load((EXAMPLES / "contoso-instance.yaml").read_text())
    return parse_instance(validation.admit("PortalInstance", raw)[0])


class Counted(Renders):
    """Renders that counts the renders it makes (not handed out again)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, size: int = RENDERS_KEPT) -> None:
        super().__init__(size)
        self.rendered = 0
        made = render.children

        def counted(*args: Any) -> list[dict[str, Any]]:
            self.rendered += 1
            return made(*args)

        monkeypatch.setattr(render, "children", counted)


def test_equal_inputs_reuse_the_last_render_as_fresh_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, portal, instance = (
        Settings(base_domain="portals.example.com"),
        _portal("p"),
        _instance(),
    )
    expected = [with_hash(m) for m in render.children(portal, instance, settings, Facts())]
    renders = Counted(monkeypatch)
    first = renders.desired(portal, instance, settings, Facts())
    assert first == expected
    first[0]["metadata"]["name"] = "changed by the caller"
    again = renders.desired(_portal("p"), _instance(), settings, Facts())  # equal, not the same
    assert renders.rendered == 1
    assert again[0]["metadata"]["name"] != "changed by the caller"
    assert again == expected


def test_any_changed_input_renders_again(monkeypatch: pytest.MonkeyPatch) -> None:
    renders, settings = Counted(monkeypatch), Settings(base_domain="portals.example.com")
    portal, instance = _portal("p"), _instance()
    before = renders.desired(portal, instance, settings, Facts())
    after = renders.desired(portal, instance, settings, Facts(attempt=2))
    image = replace(settings, runtime_image="registry.example.com/other:1")
    other = renders.desired(portal, instance, image, Facts())
    assert renders.rendered == 3
    assert after != before and other != before


def test_the_least_recently_used_render_goes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    renders, settings, instance = Counted(monkeypatch, size=2), Settings(), _instance()
    a, b, c = _portal("a"), _portal("b"), _portal("c")
    for portal in (a, b, a, c):  # c pushes out b, the least recently used
        renders.desired(portal, instance, settings, Facts())
    assert renders.rendered == 3
    renders.desired(a, instance, settings, Facts())
    assert renders.rendered == 3
    renders.desired(b, instance, settings, Facts())
    assert renders.rendered == 4
