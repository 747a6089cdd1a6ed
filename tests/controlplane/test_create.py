"""Act's create on the real API server: an apply that only creates (it names a
resourceVersion no object has), so a name someone else holds is refused in the same
request, with no look-up before it — and what it creates is Portico's to prune."""

from __future__ import annotations

import json
from typing import Any

import pytest

from portico.controller.act import FIELD_MANAGER, Conflict, Writer
from portico.controller.kube import Kube, connect
from portico_dev import ControlPlane


def config_map(namespace: str, name: str, uid: str, data: dict[str, str]) -> dict[str, Any]:
    """A child of the ConfigMap `anchor` (a stand-in for its portal: an owner that exists,
    so the garbage collector leaves it be)."""
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "anchor", "uid": uid}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "data": data,
    }


def get(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        plane.kubectl("get", "configmap", name, "-n", namespace, "-o", "json").stdout
    )
    return found


class Counting(Kube):
    """The real client, counting requests by method."""

    def __init__(self, kube: Kube) -> None:
        super().__init__(kube.client)
        self.methods: list[str] = []

    def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.methods.append(method)
        return super()._request(method, *args, **kwargs)


def test_a_create_is_one_apply_and_a_taken_name_is_refused_untouched(
    control_plane: ControlPlane, namespace: str
) -> None:
    kube = Counting(Kube(connect(str(control_plane.kubeconfig))))
    control_plane.kubectl("create", "configmap", "anchor", "-n", namespace)
    uid = get(control_plane, namespace, "anchor")["metadata"]["uid"]
    writer = Writer(kube)

    created = writer.create(config_map(namespace, "fresh", uid, {"a": "1", "b": "2"}), uid)
    assert kube.methods == ["PATCH"]  # no look-up before it
    managers = {(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]}
    assert managers == {(FIELD_MANAGER, "Apply")}  # so a later apply prunes what it drops
    pruned = writer.apply(config_map(namespace, "fresh", uid, {"a": "1"}))
    assert pruned["data"] == {"a": "1"}

    theirs = config_map(namespace, "theirs", uid, {"x": "mine"})
    del theirs["metadata"]["ownerReferences"]  # someone else's, owned by no portal
    control_plane.kubectl("create", "-f", "-", input=json.dumps(theirs))
    before = get(control_plane, namespace, "theirs")
    kube.methods.clear()
    with pytest.raises(Conflict):
        writer.create(config_map(namespace, "theirs", uid, {"x": "ours"}), uid)
    assert kube.methods == ["PATCH", "GET"]  # refused, then read to say whose it is
    after = get(control_plane, namespace, "theirs")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["data"] == {"x": "mine"}

    # Our own object the store had not seen yet (an answer lost): refused, read, applied.
    kube.methods.clear()
    again = writer.create(config_map(namespace, "fresh", uid, {"a": "2"}), uid)
    assert kube.methods == ["PATCH", "GET", "PATCH"] and again["data"] == {"a": "2"}
