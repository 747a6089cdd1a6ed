"""A tuned asynchronous API client (aiohttp, admin client certificate) and a watch tracker.

The bench's own requests run as the admin user, so the audit log never
counts them as the operator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from portico.controller.kube import RESOURCES

# Every kind whose arrival the bench times: the Portal and each child Portico writes.
TRACKED = ("Portal", "Secret", "ConfigMap", "Deployment", "Service", "Ingress", "Job")


# Answers an overloaded API server gives; every request here is idempotent (apply, create
# of a fixed name with 409 accepted, merge patch), so retrying them is safe.
TRANSIENT = frozenset({429, 500, 503, 504})
RETRIES = 6


class ApiFailed(RuntimeError):
    """A non-2xx answer from the API server."""


class Api:
    def __init__(self, server: str, pki: Path, limit: int = 32) -> None:
        self.server = server
        self.retries = 0  # reported with the floor: a sign the API server was saturated
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        # One connection per in-flight request: HTTP/1.1 has no multiplexing.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=limit + 16),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            read_bufsize=2**22,  # one watch event is one line; a ConfigMap can be large
        )
        self.limit = limit
        self.inflight = asyncio.Semaphore(limit)

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        ok: Iterable[int] = (),
    ) -> Any:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        for attempt in range(RETRIES + 1):
            async with (
                self.inflight,
                self.session.request(
                    method, self.server + path, data=data, params=params, headers=headers
                ) as resp,
            ):
                text = await resp.text()
            if resp.status in TRANSIENT and attempt < RETRIES:
                # An overloaded API server says 429/5xx; back off as client-go does.
                self.retries += 1
                await asyncio.sleep(min(0.5 * 2**attempt, 8))
                continue
            if resp.status >= 300 and resp.status not in ok:
                raise ApiFailed(f"{method} {path}: {resp.status} {text[:300]}")
            return json.loads(text) if text and resp.status < 300 else None
        raise AssertionError("unreachable")

    async def apply(self, manifest: dict[str, Any], manager: str) -> None:
        """Server-side apply, exactly as Portico's writer does it."""
        meta = manifest["metadata"]
        path = RESOURCES[manifest["kind"]].path(meta.get("namespace"), meta["name"])
        params = {"fieldManager": manager, "force": "true"}
        await self.request("PATCH", path, manifest, params, "application/apply-patch+yaml")

    async def create(self, manifest: dict[str, Any]) -> None:
        meta = manifest["metadata"]
        path = RESOURCES[manifest["kind"]].path(meta.get("namespace"))
        await self.request("POST", path, manifest, ok=(409,))

    async def merge_patch(self, kind: str, namespace: str | None, name: str, body: Any) -> None:
        path = RESOURCES[kind].path(namespace, name)
        await self.request("PATCH", path, body, None, "application/merge-patch+json")


@dataclass
class Seen:
    """When the bench first saw an object, and the moments that matter for its kind."""

    created: float
    # Portal: generation → first time its status answered that generation / was Ready at it.
    answered: dict[int, float] = field(default_factory=dict)
    ready: dict[int, float] = field(default_factory=dict)
    # Deployment Available / Job Complete.
    available: float | None = None


def _condition(obj: dict[str, Any], type_: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


class Tracker:
    """Cluster-wide watches of every tracked kind; records times, keeps no bodies.

    KINDS: what to watch (default TRACKED); ON_EVENT(kind, object, moment) is called with
    every listed or changed object, for a bench that times moments of its own."""

    def __init__(
        self,
        api: Api,
        kinds: Iterable[str] = TRACKED,
        on_event: Callable[[str, dict[str, Any], float], None] | None = None,
    ) -> None:
        self.api = api
        self.kinds = tuple(kinds)
        self.on_event = on_event
        self.seen: dict[tuple[str, str, str], Seen] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        synced = [asyncio.Event() for _ in self.kinds]
        for kind, event in zip(self.kinds, synced, strict=True):
            self.tasks.append(asyncio.create_task(self._watch(kind, event)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in synced)), 60)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def get(self, kind: str, namespace: str, name: str) -> Seen | None:
        return self.seen.get((kind, namespace, name))

    def _record(self, kind: str, obj: dict[str, Any], now: float) -> None:
        if self.on_event is not None:
            self.on_event(kind, obj, now)
        meta = obj["metadata"]
        seen = self.seen.setdefault((kind, meta.get("namespace", ""), meta["name"]), Seen(now))
        if kind == "Portal":
            status = obj.get("status") or {}
            generation = int(meta.get("generation", 1))
            if status.get("observedGeneration") == generation:
                seen.answered.setdefault(generation, now)
                if status.get("phase") == "Ready":
                    seen.ready.setdefault(generation, now)
        elif seen.available is None and (
            (kind == "Deployment" and _condition(obj, "Available"))
            or (kind == "Job" and _condition(obj, "Complete"))
        ):
            seen.available = now
        self.changed.set()

    async def _watch(self, kind: str, synced: asyncio.Event) -> None:
        path = RESOURCES[kind].path()
        while True:
            try:
                listed = await self.api.request("GET", path)
                now = time.monotonic()
                for item in listed["items"]:
                    self._record(kind, item, now)
                version = listed["metadata"]["resourceVersion"]
                synced.set()
                while version:
                    version = await self._stream(kind, path, version)
            except (aiohttp.ClientError, ApiFailed, TimeoutError):
                await asyncio.sleep(1)  # a dropped connection: list again, as informers do

    async def _stream(self, kind: str, path: str, version: str) -> str:
        """Follow one watch; returns the version to resume from, or "" to list again."""
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "290",
        }
        url = self.api.server + path
        async with self.api.session.get(url, params=params) as resp:
            if resp.status != 200:
                return ""
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    return ""  # 410 Gone: the version is too old; list again
                version = obj["metadata"].get("resourceVersion", version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._record(kind, obj, time.monotonic())
        return version

    async def until(self, done: Callable[[], bool], timeout: float, what: str) -> float:
        """Wait until done() is true (checked on every change); returns the moment it was."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
        return time.monotonic()
