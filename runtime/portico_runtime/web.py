"""`serve`: the portal's start page and `/healthz`, from portal.json as it is now."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from portico_runtime import html
from portico_runtime.config import ConfigError, Reader
from portico_runtime.security import SecurityHeaders

log = logging.getLogger("portico.runtime")

# Seconds a visitor's browser waits before asking again while the runtime cannot serve.
RETRY_AFTER = "30"


def create_app(reader: Reader | None = None) -> Starlette:
    reader = reader or Reader()

    async def start(request: Request) -> Response:
        try:
            portal = reader.get()
        except ConfigError:
            # Never a bare error: without a usable configuration this is a portal being set up.
            page = html.setup_page(request.url.hostname or "This portal", "en-US")
            return HTMLResponse(page, 503, headers={"Retry-After": RETRY_AFTER})
        language = html.choose_language(
            request.headers.get("accept-language", ""), portal.languages, portal.language
        )
        page = html.start_page(portal, language)
        return HTMLResponse(page, headers={"Content-Language": language})

    async def healthz(request: Request) -> Response:
        try:
            reader.get()
        except ConfigError as exc:
            # The reason is the operator's to tell (status, Events), not a visitor's to read.
            log.warning("not ready: %s", exc)
            return PlainTextResponse("not ready\n", 503)
        return PlainTextResponse("ok\n")

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/", start)]
    # Each feature (identity, content, ...) adds `*feature.routes(reader)` here, and its
    # middleware (sessions, CSRF) goes after the security headers, which stay outermost.
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
