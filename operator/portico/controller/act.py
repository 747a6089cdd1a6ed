"""Act: the only writer of what a reconcile decides (the elector writes its Lease, nothing
else). It carries out a plan and nothing else.

Children go out with server-side apply under field manager `portico`, but
only onto objects this portal controls: a child the store does not hold yet
is created with an apply that the API server refuses if any object has the
name (`create`), and an object of that name that is not this portal's is
never written (the portal reports ChildConflict). Deletes carry a UID
precondition for the same reason. Events are best-effort.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import logging
import socket
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from portico.controller import metrics, token_exchange
from portico.controller.kube import RESOURCES, ApiError, Kube
from portico.controller.store import controller_uid
from portico.core import names, token
from portico.core.children import Write, with_hash
from portico.core.decide import Plan
from portico.core.names import APPLIED_HASH
from portico.core.observed import Key, Observed

FIELD_MANAGER = "portico"
# A resourceVersion no stored object has (etcd's first write is revision 2): an apply
# naming it creates an object that is not there and is refused (409) onto one that is.
NO_OBJECT_VERSION = "1"
# Kinds that name other children (pods mount the Secrets and ConfigMaps and run under the
# NetworkPolicy; an Ingress routes to its Service through its Middleware): written once
# those are. Within each wave the writes go out at once.
NAMING = frozenset({"Deployment", "Job", "Ingress"})
# Child writes in flight at once, per reconcile worker (the pool is shared by all).
WRITES_PER_WORKER = 2
log = logging.getLogger("portico.act")

Written = Callable[[str, dict[str, Any]], None]
Deleted = Callable[[str, str, str], None]


class Conflict(Exception):
    """A child's name is held by an object this portal does not control."""

    def __init__(self, key: Key) -> None:
        super().__init__(f"{key[0]} {key[1]} exists and is not this portal's")
        self.key = key


def _noop(*_: Any) -> None:
    return None


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns OLD into NEW: changed values, nested
    objects as patches of their own, and null for every key NEW no longer has, at any
    depth (a merge patch keeps whatever it does not name, e.g. status.customDomain.missing
    once the count ends)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    patch.update({key: None for key in old if key not in new})
    return patch


class Writer:
    def __init__(self, kube: Kube, concurrency: int = 1) -> None:
        self.kube = kube
        self.instance = socket.gethostname()
        # A plan's child writes in flight at once, across every reconcile (1: in turn).
        self.pool = ThreadPoolExecutor(concurrency, "write") if concurrency > 1 else None

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        kind, meta = manifest["kind"], manifest["metadata"]
        path = RESOURCES[kind].path(meta.get("namespace"), meta["name"])
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        result: dict[str, Any] = self._write(
            "PATCH", kind, path, manifest, query, "application/apply-patch+yaml"
        )
        return result

    def create(self, manifest: dict[str, Any], uid: str) -> dict[str, Any]:
        """Apply a child this portal does not hold yet, unless someone else's object has the name.

        Creating with POST would leave its fields to an Update manager that later
        applies never prune, so it is an apply that only creates: it names a
        resourceVersion no object has, so the API server refuses it (409) when the
        name is taken — in the same request, with no moment between a look and a
        write. Only then is the object read: ours (an answer lost, a store behind)
        is applied, anyone else's raises Conflict. An API server that refused the
        version although the name was free is answered with a plain apply.
        """
        kind, meta = manifest["kind"], manifest["metadata"]
        only_new = {**manifest, "metadata": {**meta, "resourceVersion": NO_OBJECT_VERSION}}
        try:
            return self.apply(only_new)
        except ApiError as err:
            if err.status != 409:
                raise
        current = self.kube.get(kind, meta["namespace"], meta["name"])
        if current is not None and controller_uid(current) != uid:
            raise Conflict((kind, meta["name"]))
        return self.apply(manifest)

    def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete a child, but only the very object observed (UID precondition)."""
        path = RESOURCES[kind].path(namespace, name)
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        try:
            self._write("DELETE", kind, path, body, None, None)
        except ApiError as err:
            if err.status not in (404, 409):  # gone already, or replaced by another object
                raise

    def carry_out(
        self, plan: Plan, o: Observed, written: Written = _noop, deleted: Deleted = _noop
    ) -> int:
        """Write the plan's children, delete, then status and Events; returns writes made."""
        namespace = o.portal.namespace
        first = [w for w in plan.writes if w.key[0] not in NAMING]
        for wave in (first, [w for w in plan.writes if w.key[0] in NAMING]):
            self._at_once([functools.partial(self._child, w, plan, o, written) for w in wave])
        writes = len(plan.writes)
        for kind, name in plan.deletes:
            child = o.children[(kind, name)]
            self.delete(kind, namespace, name, child["metadata"].get("uid", ""))
            deleted(kind, namespace, name)
            writes += 1
        for token_id in plan.revoke_tokens:
            self.revoke(o, token_id)
        for kind, _ in plan.skipped:
            metrics.WRITES_SKIPPED.labels(kind=kind).inc()
        return writes + self.finish(plan, o, written)

    def _child(self, write: Write, plan: Plan, o: Observed, written: Written) -> None:
        manifest, minted = write.manifest, ""
        if plan.mint_token and write.key == ("Secret", names.instance_secret_name(o.portal.name)):
            manifest = self.with_token(manifest, o, plan.mint_token)
            minted = manifest["metadata"]["annotations"][token.TOKEN_ID]
        uid = o.portal.uid
        try:
            result = self.create(manifest, uid) if write.create else self.apply(manifest)
        except Exception:
            if minted:  # never stored: no one may hold it
                self.revoke(o, minted)
            raise
        written(manifest["kind"], result)

    def _at_once(self, calls: list[Callable[[], None]]) -> None:
        """Run CALLS on the pool and wait for all; the first failure (in order) is raised."""
        if self.pool is None or len(calls) < 2:
            for call in calls:
                call()
            return
        futures: list[Future[None]] = [self.pool.submit(call) for call in calls]
        errors = [f.exception() for f in futures]  # waits for every one
        for error in errors:
            if error is not None:
                raise error

    def with_token(self, manifest: dict[str, Any], o: Observed, ttl: int) -> dict[str, Any]:
        """The instance Secret with a token the instance just minted for this portal alone."""
        if o.instance is None or o.credentials is None:
            raise token_exchange.TokenExchangeFailed("the instance or its credentials are gone")
        minted = token_exchange.mint(
            o.instance, o.credentials, o.portal.namespace, o.portal.name, ttl
        )
        out = copy.deepcopy(manifest)
        annotations = out["metadata"].setdefault("annotations", {})
        annotations.pop(APPLIED_HASH, None)
        annotations[token.TOKEN_ID] = minted.id
        annotations[token.TOKEN_EXPIRES] = names.iso(minted.expires)
        out["data"] = {
            **(out.get("data") or {}),
            "token": base64.b64encode(minted.token.encode()).decode(),
        }
        # The hash decide will compute from the Secret as it now is: no write next time.
        return with_hash(out)

    def revoke(self, o: Observed, token_id: str) -> None:
        """Best-effort: a token not revoked now ends at its expiry."""
        if o.instance is None or o.credentials is None:
            return
        try:
            token_exchange.revoke(o.instance, o.credentials, token_id)
        except token_exchange.TokenExchangeFailed as err:
            log.warning(
                "could not revoke the instance token of %s/%s (it ends at its expiry): %s",
                o.portal.namespace,
                o.portal.name,
                err,
            )

    def finish(self, plan: Plan, o: Observed, written: Written = _noop) -> int:
        """Status, then Events (best-effort): the part of a plan that only reports."""
        writes = 0
        meta = o.obj["metadata"]
        result = self.patch_status(
            "Portal", meta["namespace"], meta["name"], dict(o.status), plan.status
        )
        if result is not None:
            written("Portal", result)
            writes += 1
        for event in plan.events:
            writes += self.event(dict(o.obj), event.type, event.reason, event.message)
        return writes

    def patch_status(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        old: dict[str, Any],
        new: dict[str, Any],
        resource_version: str = "",
    ) -> dict[str, Any] | None:
        """Merge-patch the status subresource when it differs; removed keys become null.
        RESOURCE_VERSION: write only onto that version of the object (else 409)."""
        if old == new:
            return None
        patch = merge_patch(old, new)
        path = RESOURCES[kind].path(namespace, name, "status")
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        query = {"fieldManager": FIELD_MANAGER}  # managedFields then say when Portico wrote it
        result: dict[str, Any] = self._write(
            "PATCH", kind, path, body, query, "application/merge-patch+json"
        )
        return result

    def annotate(self, kind: str, namespace: str | None, name: str, values: dict[str, str]) -> None:
        """Set annotations (the user's restart and re-check requests; never the spec)."""
        path = RESOURCES[kind].path(namespace, name)
        body = {"metadata": {"annotations": values}}
        self._write("PATCH", kind, path, body, None, "application/merge-patch+json")

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> int:
        """Post an Event; a failure is logged and counted, never fails the reconcile."""
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
        log.info("event %s %s on %s/%s: %s", type_, reason, namespace, meta["name"], message)
        try:
            self._write("POST", "Event", RESOURCES["Event"].path(namespace), body, None, None)
        except ApiError as err:
            metrics.EVENTS_FAILED.inc()
            log.warning(
                "could not post event %s on %s/%s: %s", reason, namespace, meta["name"], err
            )
            return 0
        return 1

    def _write(
        self,
        method: str,
        kind: str,
        path: str,
        body: Any,
        query: dict[str, str] | None,
        content_type: str | None,
    ) -> Any:
        metrics.WRITES.labels(kind=kind, verb=method).inc()
        return self.kube.request(method, path, body, query, content_type or "application/json")
