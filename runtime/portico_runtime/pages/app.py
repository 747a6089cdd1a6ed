"""The page server's HTTP side: for each request, the site its Host names, then either
the portal itself (Ready: passed on to its runtime) or its public page.

| the host is                    | answer                                                |
|--------------------------------|-------------------------------------------------------|
| a portal's, visitor not allowed| 403 "cannot be reached from your address" (allow-list)|
| a Ready portal's               | the portal's runtime answers (proxy.py)               |
| a portal's, not Ready          | its page: 503, Retry-After, the phase's generic line  |
| a renamed portal's old one     | 308 to its URL, same path and query, until released   |
| no portal's                    | 404 "There is no portal at HOST"                      |

The allow-list (spec.access.allowedSourceRanges) is checked here for everything this
server answers, whatever the ingress controller, against the address the ingress
controller's connection came from: the last X-Forwarded-For entry, which the controller
appends itself (whatever a client sent comes before it). The controller's own refusals
arrive as page requests: Traefik's errors Middleware asks for BLOCKED_PATH, ingress-nginx's
default backend call carries `X-Code: 403`; both get the 403 page for the Host.

`/healthz` (liveness: "ok") and `/readyz` (200 once the first lists are in) answer
for hosts no portal has: the kubelet's probes, never a portal's own paths.
"""

from __future__ import annotations

import asyncio
import datetime
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
# A Configuring portal may have just become Ready, and a Ready one's pods may not have
# reached the watch yet: read them again, at most this often per portal.
RECHECK_SECONDS = 1.0
# The page Traefik's errors Middleware asks for when the allow-list refused a visitor
# (charts/portico/templates/pages.yaml names it; tests/unit keeps the two in step).
BLOCKED_PATH = "/.portico/blocked"

Refresh = Callable[[tuple[str, str]], Site | None]
Reroute = Callable[[tuple[str, str]], None]


def maintenance_page(site: Site, custom: str | None, accept_language: str) -> Response:
    """503 with Retry-After: the owner's custom page, or the default one with its message."""
    assert site.maintenance is not None
    headers = {"Retry-After": str(site.maintenance.retry_after), "Cache-Control": "no-store"}
    if site.maintenance.custom and custom is not None:
        return HTMLResponse(custom, 503, headers=headers)
    language = _language(site, accept_language)
    body = html.maintenance_page(site.display_name, language, site.maintenance.message)
    return HTMLResponse(body, 503, headers={**headers, "Content-Language": language})


def moved(request: Request, url: str) -> Response:
    """A renamed portal's old host: 308 (the method and body are kept) to the same path and
    query at its URL."""
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = f"?{request.url.query}" if request.url.query else ""
    location = url.rstrip("/") + path.decode("latin-1") + query
    return Response(status_code=308, headers={"Location": location, "Cache-Control": "no-store"})


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _language(site: Site, accept_language: str) -> str:
    # Among the portal's languages, those the runtime has words for (else en-US).
    bundles = set(available())
    offered = tuple(lang for lang in site.languages if lang in bundles) or ("en-US",)
    default = site.language if site.language in bundles else offered[0]
    return html.choose_language(accept_language, offered, default)


def client_address(request: Request) -> str:
    """The address the ingress controller saw: the last X-Forwarded-For entry (each proxy
    appends its peer), else this connection's peer (a request that came straight here)."""
    entries = [e.strip() for h in request.headers.getlist("x-forwarded-for") for e in h.split(",")]
    entries = [e for e in entries if e]
    if entries:
        return entries[-1]
    return request.client.host if request.client else ""


def blocked_page(site: Site | None, host: str, accept_language: str) -> Response:
    """403: the visitor's address is not on the portal's allow-list."""
    if site is None:
        language = html.choose_language(accept_language, tuple(available()), "en-US")
        name = host or "this address"
    else:
        language, name = _language(site, accept_language), site.display_name
    body = html.notice_page(name, language, "blocked")
    headers = {"Cache-Control": "no-store", "Content-Language": language}
    return HTMLResponse(body, 403, headers=headers)


def page(site: Site | None, host: str, accept_language: str) -> Response:
    if site is None:
        language = html.choose_language(accept_language, tuple(available()), "en-US")
        body = html.notice_page(host or "this address", language, "unknown")
        return HTMLResponse(body, 404, headers={"Cache-Control": "no-store"})
    language = _language(site, accept_language)
    body = html.notice_page(site.display_name, language, site.category)
    headers = {
        "Retry-After": str(RETRY_AFTER.get(site.category, 300)),
        "Cache-Control": "no-store",
        "Content-Language": language,
    }
    return HTMLResponse(body, 503, headers=headers)


class Rechecks:
    """Fresh reads for one portal, at most one of each kind per portal per RECHECK_SECONDS:
    the watches may lag what `kubectl wait` saw."""

    def __init__(self, refresh: Refresh, reroute: Reroute) -> None:
        self.refresh, self.reroute = refresh, reroute
        self._last: dict[tuple[str, tuple[str, str]], float] = {}
        self._lock = threading.Lock()

    def _due(self, what: str, key: tuple[str, str]) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get((what, key), float("-inf")) < RECHECK_SECONDS:
                return False
            self._last[(what, key)] = now
            return True

    async def site(self, site: Site) -> Site | None:
        """The Portal as the API server has it now (a Configuring one may be Ready)."""
        if not self._due("portal", site.key):
            return site
        try:
            return await asyncio.to_thread(self.refresh, site.key)
        except Exception as exc:  # the watch's view stands
            log.warning("re-reading portal %s/%s: %s", *site.key, exc)
            return site

    async def pods(self, site: Site) -> None:
        """The EndpointSlices of a Ready portal's Service read again (Ready means they list
        its pods; the watch may not have brought them yet)."""
        if not self._due("pods", site.key):
            return
        try:
            await asyncio.to_thread(self.reroute, site.key)
        except Exception as exc:
            log.warning("re-reading the endpoints of %s/%s: %s", *site.key, exc)


def create_app(
    directory: Directory, refresh: Refresh | None = None, reroute: Reroute | None = None
) -> Starlette:
    rechecks = Rechecks(refresh, reroute or (lambda key: None)) if refresh else None

    async def handle(request: Request) -> Response:
        host = (request.url.hostname or "").lower()
        site = directory.lookup(host)
        if site is not None and host not in site.hosts:  # a renamed portal's old host
            if target := site.redirect(host, _now()):
                return moved(request, target)
            site = None  # released: nobody's until the watch says whose it is
        if site is None and request.url.path in ("/healthz", "/readyz"):
            return health(request.url.path)
        accept = request.headers.get("accept-language", "")
        refused = request.url.path == BLOCKED_PATH or request.headers.get("x-code") == "403"
        if refused or (site is not None and not site.admits(client_address(request))):
            return blocked_page(site, host, accept)
        if site is not None and site.phase == "Configuring" and rechecks:
            site = await rechecks.site(site)
        if site is not None and site.maintenance is not None:
            return await maintenance(request, site)
        if site is not None and site.serving:
            if not directory.pods(site.key) and rechecks:
                await rechecks.pods(site)
            pods = directory.pods(site.key)
            if pods:
                try:
                    return await proxy.forward(request, pods)
                except proxy.Unreachable as exc:
                    log.warning("portal %s/%s: %s", *site.key, exc)
        return page(site, host, request.headers.get("accept-language", ""))

    async def maintenance(request: Request, site: Site) -> Response:
        """The maintenance page; /healthz still reaches the running runtime."""
        pods = directory.pods(site.key)
        if request.url.path == "/healthz" and pods:
            try:
                return await proxy.forward(request, pods)
            except proxy.Unreachable as exc:
                log.warning("portal %s/%s: %s", *site.key, exc)
        custom = directory.maintenance_page(site.key)
        return maintenance_page(site, custom, request.headers.get("accept-language", ""))

    def health(path: str) -> Response:
        if path == "/readyz" and not directory.synced.is_set():
            return PlainTextResponse("not ready\n", 503)
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[Route("/{path:path}", handle, methods=METHODS)],
        middleware=[Middleware(SecurityHeaders)],
    )
