"""/metrics behind the API server's authentication, in process (the kube-rbac-proxy way).

With `metrics_auth` on, a scrape must carry `Authorization: Bearer TOKEN`. The API
server says who the token belongs to (TokenReview) and whether that user may `get`
the non-resource URL `/metrics` (SubjectAccessReview): grant it with a ClusterRole
rule `nonResourceURLs: ["/metrics"], verbs: [get]` (the chart's
`<release>-metrics-reader`). No token: 401; a token the API server does not accept:
401; a user without the right: 403. Answers are kept for a minute per token (its
SHA-256, never the token), so a scrape every few seconds costs two API requests a
minute per scraper, not two per scrape.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from portico.controller.kube import ApiError, Kube

log = logging.getLogger("portico.metrics")
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
CACHE_SECONDS = 60.0
CACHE_SIZE = 64
REASONS = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}


class MetricsAuth:
    """Decides a scrape from its Authorization header: 200, 401, 403 (or 503 when the API
    server cannot be asked, which is not cached)."""

    def __init__(
        self, kube: Kube, path: str = "/metrics", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube = kube
        self.path = path
        self.clock = clock
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, int]] = {}

    def decide(self, authorization: str) -> int:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return 401
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self.lock:
            cached = self.cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            code = self._ask(token)
        except (ApiError, OSError) as err:
            log.warning("cannot check a /metrics token with the API server: %s", _what(err))
            return 503
        with self.lock:
            if len(self.cache) >= CACHE_SIZE:
                self.cache = {k: v for k, v in self.cache.items() if v[0] > now}
                if len(self.cache) >= CACHE_SIZE:
                    self.cache.clear()
            self.cache[key] = (now + CACHE_SECONDS, code)
        return code

    def _ask(self, token: str) -> int:
        review = self.kube.request(
            "POST",
            TOKEN_REVIEWS,
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )
        status = (review or {}).get("status") or {}
        if not status.get("authenticated"):
            return 401
        user = status.get("user") or {}
        spec: dict[str, Any] = {
            "user": user.get("username", ""),
            "groups": user.get("groups") or [],
            "uid": user.get("uid", ""),
            "nonResourceAttributes": {"path": self.path, "verb": "get"},
        }
        if user.get("extra"):
            spec["extra"] = user["extra"]
        access = self.kube.request(
            "POST",
            ACCESS_REVIEWS,
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        return 200 if ((access or {}).get("status") or {}).get("allowed") else 403


def _what(err: BaseException) -> str:
    """The failure without any request body (it held a token)."""
    return f"HTTP {err.status}" if isinstance(err, ApiError) else type(err).__name__


def guarded(app: Any, auth: MetricsAuth) -> Any:
    """The WSGI app APP, answered only to scrapes AUTH lets through."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        code = auth.decide(environ.get("HTTP_AUTHORIZATION", ""))
        if code == 200:
            return app(environ, start_response)  # type: ignore[no-any-return]
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if code == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="portico-metrics"'))
        start_response(f"{code} {REASONS[code]}", headers)
        return [f"{REASONS[code]}\n".encode()]

    return wsgi


def serve(port: int, addr: str, auth: MetricsAuth | None) -> ThreadingWSGIServer:
    """/metrics on ADDR:PORT in a daemon thread; behind AUTH when given."""
    app = make_wsgi_app(REGISTRY)
    if auth is not None:
        app = guarded(app, auth)
    httpd = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True).start()
    return httpd
