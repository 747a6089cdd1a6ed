"""kmock 0.8's Kubernetes emulator, plus the few API-server behaviours Portico relies on.

kmock's `KubernetesEmulator` keeps objects in memory and serves discovery, LIST,
WATCH, GET, POST, PATCH and DELETE. This subclass adds what the operator needs
and kmock 0.8 does not do:

- server-side apply creates a missing object (kmock answers PATCH of a missing
  object with 404);
- a POST with `metadata.generateName` gets a name, a uid and a creation time
  (kmock keys the object by name, so a second Event would collide with 409);
- faults that leave the store untouched: kmock applies a write to its store
  *before* it consults the test's reactions, so `view << 409` on a PATCH would
  answer 409 and still store the change. `fail(view, status)` answers before
  the store is touched; the view is ordinary kmock DSL (`api["patch"][:1]`).
- dropping the live watch streams of a resource, cleanly or with an ERROR event.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import aiohttp.web
import attrs
import kmock
from kmock import Payload, Request

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
_DROP = "X-TEST-DROP"  # an in-band marker on the emulator's event bus, never sent to a client

# What the operator and Kopf find through discovery: resource → (kind, namespaced).
RESOURCES = {
    "portico.dev/v1alpha1/portals": ("Portal", True),
    "portico.dev/v1alpha1/portalinstances": ("PortalInstance", False),
    "v1/secrets": ("Secret", True),
    "v1/configmaps": ("ConfigMap", True),
    "v1/services": ("Service", True),
    "v1/events": ("Event", True),
    "v1/pods": ("Pod", True),
    "apps/v1/deployments": ("Deployment", True),
    "batch/v1/jobs": ("Job", True),
    "networking.k8s.io/v1/ingresses": ("Ingress", True),
    "discovery.k8s.io/v1/endpointslices": ("EndpointSlice", True),
    # Kopf waits for namespaces in discovery even when cluster-wide; see ApiServer.__call__.
    "v1/namespaces": ("Namespace", False),
}
VERBS = {"get", "list", "watch", "create", "patch", "update", "delete"}


@attrs.define
class Fault:
    view: kmock.View
    error: kmock.KubernetesError
    hits: list[Request] = attrs.field(factory=list)


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    namespaces: list[str] = attrs.field(factory=list)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    # Request id → when it arrived (time.monotonic()), for backoff assertions.
    arrivals: dict[int, float] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, (kind, namespaced) in RESOURCES.items():
            subresources = {"status"} if key.startswith("portico.dev/") else set()
            self.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subresources
            )

    def fail(self, view: kmock.View, status: int, reason: str, message: str = "") -> Fault:
        """Answer the requests VIEW selects with STATUS, without touching the store."""
        error = kmock.KubernetesError(
            status=status, reason=reason, message=message or f"injected {status} {reason}"
        )
        fault = Fault(view, error)
        self.faults.append(fault)
        return fault

    async def drop_watches(self, resource: str, how: str = "close") -> None:
        """End every live watch of RESOURCE.

        HOW: "close" ends the stream cleanly (a server-side timeout, a proxy cut);
        "expire" sends ERROR 410 Gone first (what a real server sends when the
        resource version is too old); "error" fails the stream, and kmock then
        writes its own ERROR event with code 500.
        """
        assert how in ("close", "expire", "error"), how
        await self._buses[kmock.resource(resource)].put({"type": _DROP, "how": how, "object": {}})

    def watchers(self, resource: str) -> int:
        """How many watch streams of RESOURCE are listening for new events right now."""
        return self._buses[kmock.resource(resource)].consumer_count

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock 0.8 cannot parse /api/v1/namespaces (it answers 500 before any reaction
        # is consulted), and the operator's namespace handler makes Kopf list and watch it.
        # Served here, unrecorded: a fixed list, and a watch that stays open and quiet.
        if raw_request.path.rstrip("/") == "/api/v1/namespaces":
            return await self._serve_namespaces(raw_request)
        return await super().__call__(raw_request)

    async def _serve_namespaces(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        items = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "uid": n}}
            for n in self.namespaces
        ]
        if raw.query.get("watch") != "true":
            return aiohttp.web.json_response(
                {"kind": "NamespaceList", "metadata": {"resourceVersion": "1"}, "items": items}
            )
        response = aiohttp.web.StreamResponse()
        await response.prepare(raw)
        while raw.transport is not None and not raw.transport.is_closing():
            await asyncio.sleep(0.2)
        return response

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        self.arrivals[request.id] = time.monotonic()
        for fault in self.faults:
            if request in fault.view:
                fault.hits.append(request)
                raise fault.error
        if request.resource is not None:
            await self._prepare_write(request, request.resource)
        return await super()._handle(request)

    async def _prepare_write(self, request: Request, resource: kmock.resource) -> None:
        data = request.data if isinstance(request.data, dict) else None
        if data is None or request.method not in ("POST", "PATCH"):
            return
        if request.method == "POST":
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                # The server names the object, as a real one does (the request record shows it).
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", _now())
            return
        apply = request.headers.get("Content-Type", "").startswith(APPLY)
        if not (apply and request.name and not request.subresource):
            return
        key: kmock.ObjectKey = (resource, request.namespace, request.name)
        async with self._lock:  # the emulator's own lock around its store
            if key in self.objects and not self.objects[key].deleted:
                return
            created = copy.deepcopy(data)
            assigned = {"uid": str(uuid.uuid4()), "creationTimestamp": _now()}
            created.setdefault("metadata", {}).update(assigned)
            if key in self.objects:
                self.objects[key].create(created)
            else:
                self.objects[key] = created
            # The PATCH handling that follows merges the same body in and announces it.

    async def _serve_watch(self, request: Request) -> AsyncIterator[Payload]:
        # Closed explicitly, so the stream leaves the bus (and `watchers`) at once.
        stream = cast(AsyncGenerator[Payload, None], super()._serve_watch(request))
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                if not (isinstance(event, dict) and event.get("type") == _DROP):
                    yield event
                    continue
                if event["how"] == "error":
                    raise RuntimeError("watch stream failed (injected)")
                if event["how"] == "expire":
                    gone = _status(410, "Expired", "too old resource version")
                    yield {"type": "ERROR", "object": gone}
                return


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body(request: Request) -> dict[str, Any]:
    data = request.data
    assert isinstance(data, dict), f"{request.method} {request.url.path}: not a JSON object"
    return data


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
