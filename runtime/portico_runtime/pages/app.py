"""The page server's HTTP side: for each request, the site its Host names, then either
the portal itself (Ready: passed on to its runtime) or its public page.

| the host is                    | answer                                                |
|--------------------------------|-------------------------------------------------------|
| a Ready portal's               | the portal's runtime answers (proxy.py)               |
| a portal's, not Ready          | its page: 503, Retry-After, the phase's generic line  |
| no portal's                    | 404 "There is no portal at HOST"                      |

`/healthz` (liveness: "ok") and `/readyz` (200 once the first lists are in) answer
for hosts no portal has: the kubelet's probes, never a portal's own paths.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from portico_runtime import html
from portico_runtime.pages import proxy
from portico_runtime.pages.sites import Directory, Site
from portico_runtime.security import SecurityHeaders
from portico_runtime.translations import available

log = logging.getLogger("portico.pages")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
RETRY_AFTER = {"setup": 30}  # seconds; any other page: 300
# A portal not Ready whose runtime has ready pods may have just become Ready: read it
# again, at most this often per portal (the watch may lag what `kubectl wait` saw).
RECHECK_SECONDS = 1.0

Refresh = Callable[[tuple[str, str]], Site | None]


def page(site: Site | None, host: str, accept_language: str) -> Response:
    if site is None:
        language = html.choose_language(accept_language, tuple(available()), "en-US")
        body = html.notice_page(host or "this address", language, "unknown")
        return HTMLResponse(body, 404, headers={"Cache-Control": "no-store"})
    language = html.choose_language(accept_language, site.languages, site.language)
    body = html.notice_page(site.display_name, language, site.category)
    headers = {
        "Retry-After": str(RETRY_AFTER.get(site.category, 300)),
        "Cache-Control": "no-store",
        "Content-Language": language,
    }
    return HTMLResponse(body, 503, headers=headers)


class Rechecks:
    """Fresh reads of single Portals, at most one per portal per RECHECK_SECONDS."""

    def __init__(self, refresh: Refresh) -> None:
        self.refresh = refresh
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    async def site(self, site: Site) -> Site | None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(site.key, float("-inf")) < RECHECK_SECONDS:
                return site
            self._last[site.key] = now
        try:
            return await asyncio.to_thread(self.refresh, site.key)
        except Exception as exc:  # the watch's view stands
            log.warning("re-reading portal %s/%s: %s", *site.key, exc)
            return site


def create_app(directory: Directory, refresh: Refresh | None = None) -> Starlette:
    rechecks = Rechecks(refresh) if refresh else None

    async def handle(request: Request) -> Response:
        host = (request.url.hostname or "").lower()
        site = directory.lookup(host)
        if site is None and request.url.path in ("/healthz", "/readyz"):
            return health(request.url.path)
        if site is not None and not site.serving and rechecks and directory.pods(site.key):
            site = await rechecks.site(site)
        if site is not None and site.serving:
            pods = directory.pods(site.key)
            if pods:
                try:
                    return await proxy.forward(request, pods)
                except proxy.Unreachable as exc:
                    log.warning("portal %s/%s: %s", *site.key, exc)
        return page(site, host, request.headers.get("accept-language", ""))

    def health(path: str) -> Response:
        if path == "/readyz" and not directory.synced.is_set():
            return PlainTextResponse("not ready\n", 503)
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[Route("/{path:path}", handle, methods=METHODS)],
        middleware=[Middleware(SecurityHeaders)],
    )
