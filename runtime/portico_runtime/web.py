"""`serve`: the portal's start page and `/healthz`, from portal.json as it is now."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from portico_runtime import content, html, identity, interactions
from portico_runtime.config import ConfigError, Reader
from portico_runtime.instance_api import InstanceAPI
from portico_runtime.security import SecurityHeaders

log = logging.getLogger("portico.runtime")

# Seconds a visitor's browser waits before asking again while the runtime cannot serve.
RETRY_AFTER = "30"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def create_app(reader: Reader | None = None) -> Starlette:
    reader = reader or Reader()
    api = InstanceAPI()  # one connection pool to the instance for every feature
    tracker = interactions.Tracker(reader)

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

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await tracker.start()
        yield
        # uvicorn has stopped taking requests: flush the interactions within the grace period.
        await tracker.stop()
        await api.close()

    async def metrics(request: Request) -> Response:
        return Response(tracker.metrics.exposition(), media_type=METRICS_TYPE)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/", start),
        Route("/metrics", metrics),
        *identity.routes(reader),
        *content.routes(reader, api, tracker),
    ]
    # Middleware: security headers outermost (so every answer, a session's redirect or
    # error included, carries them), then sessions (which set the visitor).
    middleware = [Middleware(SecurityHeaders), identity.middleware(reader)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.instance_api = api
    app.state.interactions = tracker
    return app
