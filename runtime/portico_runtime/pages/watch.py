"""The page server's only contact with the API server: list and watch Portals and the
portals' EndpointSlices, read-only (the chart's ClusterRole grants get, list, watch).

Blocking urllib in one thread per watch: the requests are few and long, and the
server's event loop never waits on them. A watch that ends is resumed from the last
resourceVersion; one the server has forgotten (410) starts again with a full list.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portico_runtime.pages.sites import Directory, site

log = logging.getLogger("portico.pages")
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PORTALS = "/apis/portico.dev/v1alpha1/portals"
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
# Only the runtime Services' slices: they carry the Service's labels.
RUNTIME_SELECTOR = "app.kubernetes.io/managed-by=portico,app.kubernetes.io/component=runtime"
# Only the operator's copies of custom maintenance pages, never another ConfigMap.
CONFIGMAPS = "/api/v1/configmaps"
PAGES_SELECTOR = "app.kubernetes.io/managed-by=portico,app.kubernetes.io/component=maintenance"
WATCH_SECONDS = 290  # the server ends a watch after this; it is resumed at once
PAGE = 500


class Gone(Exception):
    """The server no longer has the resourceVersion a watch asked for (410)."""


@dataclass(frozen=True)
class Api:
    """Where the API server is and how to authenticate: the pod's service account, or
    PORTICO_PAGES_API_URL / _TOKEN_FILE / _CA_FILE outside a cluster."""

    url: str
    token_file: Path
    ca_file: Path | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Api:
        env = os.environ if env is None else env
        if url := env.get("PORTICO_PAGES_API_URL"):
            ca = env.get("PORTICO_PAGES_CA_FILE")
            return cls(
                url.rstrip("/"), Path(env["PORTICO_PAGES_TOKEN_FILE"]), Path(ca) if ca else None
            )
        host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", SERVICE_ACCOUNT / "token", SERVICE_ACCOUNT / "ca.crt")

    def open(self, path: str, query: Mapping[str, str], timeout: float) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}" if query else self.url + path
        # Re-read at every request: projected service-account tokens are rotated.
        token = self.token_file.read_text().strip()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    def get(self, path: str, query: Mapping[str, str] | None = None, timeout: float = 10) -> Any:
        with self.open(path, query or {}, timeout) as answer:
            return json.load(answer)

    def list(self, path: str, selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """Every object (paged) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        query = {"limit": str(PAGE)}
        if selector:
            query["labelSelector"] = selector
        while True:
            page = self.get(path, query)
            items.extend(page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, str(page["metadata"]["resourceVersion"])
            query = {**query, "continue": token}

    def watch(self, path: str, version: str, selector: str = "") -> Iterator[dict[str, Any]]:
        query = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if selector:
            query["labelSelector"] = selector
        with self.open(path, query, WATCH_SECONDS + 30) as stream:
            for line in stream:
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    if (event.get("object") or {}).get("code") == 410:
                        raise Gone()
                    raise urllib.error.URLError(str(event.get("object")))
                yield event


def keep(
    api: Api,
    path: str,
    selector: str,
    replace: Callable[[list[dict[str, Any]]], None],
    apply: Callable[[str, dict[str, Any]], None],
    listed: threading.Event,
    stop: threading.Event,
) -> None:
    """List, then watch, for ever: REPLACE with each full list, APPLY each event."""
    backoff = 0.5
    version = ""
    while not stop.is_set():
        try:
            if not version:
                items, version = api.list(path, selector)
                replace(items)
                listed.set()
            for event in api.watch(path, version, selector):
                obj = event.get("object") or {}
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event.get("type") != "BOOKMARK":
                    apply(str(event.get("type")), obj)
                backoff = 0.5
                if stop.is_set():
                    return
        except Gone:
            version = ""
        except Exception as exc:  # the API server restarted, a token expired, ...
            log.warning("watching %s: %s; again in %.1fs", path, exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)


def start(api: Api, directory: Directory, stop: threading.Event) -> list[threading.Thread]:
    """The three watches, in daemon threads; DIRECTORY.synced is set once all have listed."""
    portals, slices, pages = threading.Event(), threading.Event(), threading.Event()

    def portal_event(kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        directory.put_site(key, None if kind == "DELETED" else site(obj))

    def replace_portals(items: list[dict[str, Any]]) -> None:
        directory.replace_sites(s for s in map(site, items) if s is not None)

    def slice_event(kind: str, obj: dict[str, Any]) -> None:
        directory.put_slice(obj, deleted=kind == "DELETED")

    def page_event(kind: str, obj: dict[str, Any]) -> None:
        directory.put_page(obj, deleted=kind == "DELETED")

    threads = [
        threading.Thread(
            target=keep,
            args=(api, PORTALS, "", replace_portals, portal_event, portals, stop),
            name="watch-portals",
            daemon=True,
        ),
        threading.Thread(
            target=keep,
            args=(
                api,
                SLICES,
                RUNTIME_SELECTOR,
                directory.replace_slices,
                slice_event,
                slices,
                stop,
            ),
            name="watch-endpointslices",
            daemon=True,
        ),
        threading.Thread(
            target=keep,
            args=(
                api,
                CONFIGMAPS,
                PAGES_SELECTOR,
                directory.replace_pages,
                page_event,
                pages,
                stop,
            ),
            name="watch-maintenance-pages",
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()

    def synced() -> None:
        portals.wait()
        slices.wait()
        pages.wait()
        directory.synced.set()

    threading.Thread(target=synced, name="synced", daemon=True).start()
    return threads


def fresh_site(api: Api, key: tuple[str, str]) -> dict[str, Any] | None:
    """The Portal as the API server has it now (None: gone)."""
    namespace, name = key
    path = f"/apis/portico.dev/v1alpha1/namespaces/{namespace}/portals/{name}"
    try:
        obj: dict[str, Any] = api.get(path, timeout=2)
        return obj
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


def fresh_slices(api: Api, key: tuple[str, str]) -> list[dict[str, Any]]:
    """The EndpointSlices of one portal's runtime Service as the API server has them now."""
    namespace, name = key
    path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
    selector = f"{RUNTIME_SELECTOR},kubernetes.io/service-name={name}"
    found: dict[str, Any] = api.get(path, {"labelSelector": selector}, timeout=2)
    return list(found.get("items") or ())
