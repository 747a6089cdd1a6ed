"""A real HTTP server on loopback standing where a portal's runtime pod would, for the page
server's tests: it answers `/healthz` with ok and anything else with the host and path it
was asked for, so a test sees what the page server passed on."""

from __future__ import annotations

import http.server
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
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return None


@contextmanager
def runtime_pod() -> Iterator[int]:
    """The stand-in runtime's port while the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
