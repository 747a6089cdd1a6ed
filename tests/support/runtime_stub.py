"""A real HTTP server on loopback standing where a portal's runtime pod would, for the page
server's tests: it answers `/healthz` with ok and anything else with the host and path it
was asked for, so a test sees what the page server passed on."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Runtime(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok\n"
        else:
            body = f"the portal itself at {self.headers['Host']}{self.path}".encode()
        answer(self, body, "text/plain")

    def log_message(self, *_: Any) -> None:
        return None


def answer(handler: http.server.BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    """A 200 with BODY."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def serving(
    handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[int]:
    """A loopback server of HANDLER (over TLS with TLS) in a thread; its port while the
    block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def runtime_pod() -> Iterator[int]:
    """The stand-in runtime's port while the block runs."""
    with serving(_Runtime) as port:
        yield port
