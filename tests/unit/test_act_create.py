"""Act's writes when the API server answers what the real one (tests/controlplane/
test_create.py) does not on demand: a refusal although the name was free (an API server
that honours the resourceVersion precondition on create too) is answered with a plain
apply, and a refusal for a name held by anyone else never writes; and a plan's children
go out in two waves, each at once."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from portico.controller.act import NAMING, NO_OBJECT_VERSION, Conflict, Writer
from portico.controller.kube import ApiError
from portico.core.decide import decide
from tests.support.worlds import NOW, SETTINGS, world

UID = "uid-web"


def child(owner: str = UID) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "web-config",
            "namespace": "team",
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
    }


class Refusing:
    """Refuses every apply that names NO_OBJECT_VERSION; GET answers HELD."""

    def __init__(self, held: dict[str, Any] | None) -> None:
        self.held = held
        self.calls: list[tuple[str, str | None]] = []

    def request(self, method: str, path: str, body: Any = None, *_: Any, **__: Any) -> Any:
        version = (body or {}).get("metadata", {}).get("resourceVersion")
        self.calls.append((method, version))
        if method == "PATCH" and version == NO_OBJECT_VERSION:
            raise ApiError(409, "Conflict", "the object has been modified")
        return body

    def get(self, *_: Any) -> dict[str, Any] | None:
        self.calls.append(("GET", None))
        return self.held


@pytest.mark.parametrize("held", [None, child()], ids=["name-free", "ours-unseen"])
def test_a_refusal_for_a_free_name_or_our_own_object_is_applied_plainly(
    held: dict[str, Any] | None,
) -> None:
    kube = Refusing(held)
    Writer(kube).create(child(), UID)  # type: ignore[arg-type]
    assert kube.calls == [("PATCH", NO_OBJECT_VERSION), ("GET", None), ("PATCH", None)]


def test_a_name_someone_else_holds_is_never_written() -> None:
    kube = Refusing(child(owner="uid-theirs"))
    with pytest.raises(Conflict):
        Writer(kube).create(child(), UID)  # type: ignore[arg-type]
    assert kube.calls == [("PATCH", NO_OBJECT_VERSION), ("GET", None)]


class Recording:
    """Answers every write with its body; each child write waits until WAVE of them are in
    flight together (so writes made in turn would time out), and the order is kept."""

    def __init__(self, wave: int) -> None:
        self.together = threading.Barrier(wave, timeout=10)
        self.lock = threading.Lock()
        self.log: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: Any = None, *_: Any, **__: Any) -> Any:
        kind = (body or {}).get("kind", "")
        if method == "PATCH" and kind and kind not in NAMING:
            self.together.wait()
        with self.lock:
            self.log.append((kind or path.rsplit("/", 1)[-1], "done"))
        if kind and body["metadata"]["name"] == "refused":
            raise ApiError(422, "Invalid", "refused")
        return {**(body or {}), "metadata": {**(body or {}).get("metadata", {}), "uid": "u"}}


def test_children_go_out_at_once_and_what_names_them_after() -> None:
    """A new portal's Secret and ConfigMap are written together, and its Deployment and
    Job only once both are (pods mount them)."""
    plan = decide(world(), SETTINGS, NOW)
    plan = replace(plan, mint_token=0, events=())
    first = [w.key[0] for w in plan.writes if w.key[0] not in NAMING]
    assert len(first) >= 2
    kube = Recording(len(first))
    Writer(kube, concurrency=8).carry_out(plan, world())  # type: ignore[arg-type]
    kinds = [k for k, _ in kube.log]
    assert set(kinds[: len(first)]) == set(first)
    assert {"Deployment", "Job"} <= set(kinds[len(first) :])


def test_a_failed_first_wave_writes_nothing_that_names_it() -> None:
    plan = decide(world(), SETTINGS, NOW)
    refused = [
        replace(
            w, manifest={**w.manifest, "metadata": {**w.manifest["metadata"], "name": "refused"}}
        )
        if w.key[0] == "ConfigMap"
        else w
        for w in plan.writes
    ]
    plan = replace(plan, mint_token=0, writes=tuple(refused))
    kube = Recording(len([w for w in refused if w.key[0] not in NAMING]))
    with pytest.raises(ApiError, match="refused"):
        Writer(kube, concurrency=8).carry_out(plan, world())  # type: ignore[arg-type]
    kinds = [k for k, _ in kube.log]
    assert "ConfigMap" in kinds and not {"Deployment", "Job", "status"} & set(kinds)
