"""Apply: the only module that writes to the cluster.

Children go out with server-side apply under field manager `portico`. Each
carries the hash of what was applied, so an unchanged child costs no write;
a child edited or deleted by hand no longer matches and is applied again.
"""

from __future__ import annotations

import copy
import datetime
import logging
import socket
from collections.abc import Iterable
from typing import Any

from kubernetes.utils import parse_quantity

from portico.controller import metrics
from portico.controller.kube import RESOURCES, Kube
from portico.core.render import checksum

FIELD_MANAGER = "portico"
APPLIED_HASH = "portico.dev/applied-hash"
log = logging.getLogger("portico.controller.act")


def covers(actual: Any, desired: Any) -> bool:
    """Whether ACTUAL still holds all of DESIRED (server defaults may add more)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            k in actual and covers(actual[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(covers(a, d) for a, d in zip(actual, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(actual, bool):
        return actual is desired
    return actual == desired or str(actual) == str(desired) or _same_quantity(actual, desired)


def _same_quantity(actual: Any, desired: Any) -> bool:
    """The API server stores quantities canonically (cpu 0.5 comes back as 500m)."""
    try:
        same = parse_quantity(actual) == parse_quantity(desired)  # type: ignore[no-untyped-call]
        return bool(same)
    except (ValueError, TypeError):
        return False


def with_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out["metadata"].setdefault("annotations", {})[APPLIED_HASH] = checksum(manifest)
    return out


def up_to_date(manifest: dict[str, Any], current: dict[str, Any] | None) -> bool:
    if current is None:
        return False
    annotations = current["metadata"].get("annotations") or {}
    hashed = manifest["metadata"]["annotations"][APPLIED_HASH]
    return annotations.get(APPLIED_HASH) == hashed and covers(current, manifest)


class Writer:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.instance = socket.gethostname()

    def apply(self, manifest: dict[str, Any]) -> None:
        kind, meta = manifest["kind"], manifest["metadata"]
        path = RESOURCES[kind].path(meta.get("namespace"), meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        self._write("PATCH", kind, path, manifest, query, "application/apply-patch+yaml")

    def apply_children(
        self,
        desired: Iterable[dict[str, Any]],
        current: dict[tuple[str, str], dict[str, Any]],
        keep: set[tuple[str, str]],
    ) -> int:
        """Apply what changed, delete owned children no longer wanted; returns writes made."""
        writes, wanted = 0, set()
        for manifest in desired:
            manifest = with_hash(manifest)
            key = (manifest["kind"], manifest["metadata"]["name"])
            wanted.add(key)
            if up_to_date(manifest, current.get(key)):
                metrics.WRITES_SKIPPED.labels(kind=key[0]).inc()
                continue
            self.apply(manifest)
            writes += 1
        for key, child in sorted(current.items()):
            if key in wanted or key in keep:
                continue
            meta = child["metadata"]
            path = RESOURCES[key[0]].path(meta["namespace"], meta["name"])
            self._write("DELETE", key[0], path, {"propagationPolicy": "Background"}, None, None)
            writes += 1
        return writes

    def patch_status(
        self, kind: str, namespace: str | None, name: str, old: dict[str, Any], new: dict[str, Any]
    ) -> bool:
        """Merge-patch the status subresource when it differs; removed keys become null."""
        if old == new:
            return False
        patch = {k: v for k, v in new.items() if old.get(k) != v}
        patch.update({k: None for k in old if k not in new})
        path = RESOURCES[kind].path(namespace, name, "status")
        self._write("PATCH", kind, path, {"status": patch}, None, "application/merge-patch+json")
        return True

    def annotate(self, kind: str, namespace: str | None, name: str, values: dict[str, str]) -> None:
        """Set annotations (the user's restart and re-check requests; never the spec)."""
        path = RESOURCES[kind].path(namespace, name)
        body = {"metadata": {"annotations": values}}
        self._write("PATCH", kind, path, body, None, "application/merge-patch+json")

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace")},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "portico"},
            "reportingComponent": "portico",
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        namespace = meta.get("namespace") or "default"
        self._write("POST", "Event", RESOURCES["Event"].path(namespace), body, None, None)
        log.info("event %s %s on %s/%s: %s", type_, reason, namespace, meta["name"], message)

    def _write(
        self,
        method: str,
        kind: str,
        path: str,
        body: Any,
        query: dict[str, str] | None,
        content_type: str | None,
    ) -> None:
        metrics.WRITES.labels(kind=kind, verb=method).inc()
        self.kube.request(method, path, body, query, content_type or "application/json")
