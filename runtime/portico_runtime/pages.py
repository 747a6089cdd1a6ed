"""`pages`: the "Getting set up" backend a portal's Service points at while it cannot serve.

It reads page files (`*.json`, one per portal, from a mounted ConfigMap) at request
time and answers every path with 503 and Retry-After, naming the portal whose
host was asked for, with its phase and reason on a line for its administrator.
A host with no page file still gets the page (naming the host), never an error.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from portico_runtime import html

DEFAULT_DIR = "/etc/portico/pages"
# Re-list the directory at most this often; the kubelet swaps ConfigMap files atomically.
_TTL = 2.0
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class Page:
    portal: str
    display_name: str
    language: str
    hosts: tuple[str, ...]
    phase: str
    reason: str
    message: str
    retry_after: int


def parse(data: Any) -> Page:
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise ValueError("a page file is an object with a 'hosts' list")
    return Page(
        portal=str(data.get("portal") or ""),
        display_name=str(data.get("displayName") or data.get("portal") or ""),
        language=str(data.get("language") or "en-US"),
        hosts=tuple(str(h).lower().rstrip(".") for h in data["hosts"]),
        phase=str(data.get("phase") or "Configuring"),
        reason=str(data.get("reason") or ""),
        message=str(data.get("message") or ""),
        retry_after=max(1, int(data.get("retryAfter") or 30)),
    )


class PageIndex:
    """Host → Page, from the page files in a directory, refreshed every couple of seconds."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pages: dict[str, Page] = {}
        self._read_at = float("-inf")

    def lookup(self, host: str) -> Page | None:
        if time.monotonic() - self._read_at > _TTL:
            self._pages = self._read()
            self._read_at = time.monotonic()
        return self._pages.get(host.lower().rstrip("."))

    def _read(self) -> dict[str, Page]:
        pages: dict[str, Page] = {}
        try:
            files = sorted(self.directory.glob("*.json"))
        except OSError:
            return pages
        for path in files:
            try:
                page = parse(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # one bad file must not take the other portals' pages down
            for host in page.hosts:
                pages.setdefault(host, page)
        return pages


def admin_line(page: Page) -> str:
    line = page.phase
    if page.reason:
        line += f" ({page.reason})"
    if page.message:
        line += f": {page.message}"
    return line


def create_app(directory: Path | None = None) -> Starlette:
    index = PageIndex(directory or Path(os.environ.get("PORTICO_PAGES_DIR", DEFAULT_DIR)))

    async def page(request: Request) -> Response:
        host = request.url.hostname or ""
        found = index.lookup(host)
        if found is None:
            body = html.setup_page(host or "This portal", "en-US")
            retry = 30
        else:
            body = html.setup_page(found.display_name, found.language, admin_line(found))
            retry = found.retry_after
        headers = {"Retry-After": str(retry), "Cache-Control": "no-store"}
        return HTMLResponse(body, 503, headers=headers)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/{path:path}", page, methods=_METHODS)]
    )
