"""A real HTTP receiver on loopback for the operator's notification webhook.

It keeps every request as it arrived (headers and the exact body bytes), so the tests
verify the signature over what was sent; `answer` makes it refuse (e.g. 503).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.controlplane import wait_for


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    received: list[Delivery] = field(default_factory=list)
    answer: int = 204
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deliveries(self, portal: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.received if d.json["portal"]["name"] == portal]

    def wait_for(self, portal: str, reason: str, timeout: float = 60.0) -> Delivery:
        def found() -> Delivery | None:
            return next((d for d in self.deliveries(portal) if d.json["reason"] == reason), None)

        return wait_for(f"webhook {reason} of {portal}", found, timeout=timeout)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.answer < 300:
                with receiver._lock:
                    receiver.received.append(Delivery(dict(self.headers.items()), body))
            self.send_response(receiver.answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/portico"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
