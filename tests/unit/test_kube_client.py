"""Portico's client waits the server's Retry-After on a 429 and tries again, a few times;
and it reads lists a page at a time.

`Kube.request` is the only retry layer (the pool's urllib3 retries are off: see
test_fence.py for PUT and DELETE with the leader's fence).
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import ClassVar

import kubernetes
import pytest

from portico.controller import kube as kubemod
from portico.controller.kube import THROTTLE_RETRIES, ApiError, Kube, client_for

PATH = "/api/v1/namespaces/ns/configmaps"


class Throttling(http.server.BaseHTTPRequestHandler):
    throttle = 0  # how many requests get 429 before one gets 200
    retry_after = "1"
    seen: ClassVar[list[float]] = []
    queries: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        Throttling.seen.append(time.monotonic())
        if len(Throttling.seen) <= Throttling.throttle:
            body = json.dumps({"kind": "Status", "code": 429, "message": "slow down"}).encode()
            self.send_response(429)
            if Throttling.retry_after:
                self.send_header("Retry-After", Throttling.retry_after)
        else:
            body = json.dumps({"kind": "ConfigMap", "metadata": {"name": "x"}}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        """A list in pages of `limit`, the offset as the continue token."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        Throttling.queries.append(query)
        start = int(query.get("continue", ["0"])[0])
        end = start + int(query["limit"][0])
        meta = {"continue": str(end)} if end < len(ITEMS) else {}
        body = json.dumps({"items": ITEMS[start:end], "metadata": meta}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ITEMS = [{"metadata": {"name": f"cm-{i}"}} for i in range(7)]


@pytest.fixture
def kube() -> Iterator[Kube]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Throttling.seen, Throttling.queries = [], []
    Throttling.throttle, Throttling.retry_after = 0, "1"  # each test sets its own
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield Kube(client_for(configuration))
    server.shutdown()
    thread.join()


def test_lists_are_read_a_page_at_a_time(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    """`limit` + `continue`: a fleet is never one response (nor one list in memory)."""
    monkeypatch.setattr(kubemod, "PAGE", 3)
    names = [o["metadata"]["name"] for o in kube.each("ConfigMap", "ns", "app=x")]
    assert names == [o["metadata"]["name"] for o in ITEMS]
    queries = Throttling.queries
    assert [q.get("continue", [""])[0] for q in queries] == ["", "3", "6"]
    assert all(q["limit"] == ["3"] and q["labelSelector"] == ["app=x"] for q in queries)


def test_429s_are_retried_after_retry_after(kube: Kube) -> None:
    Throttling.throttle = 2
    assert kube.request("POST", PATH, {}) == {"kind": "ConfigMap", "metadata": {"name": "x"}}
    seen = Throttling.seen
    assert len(seen) == 3
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(seen))


def test_throttled_past_the_retries_is_an_api_error(kube: Kube) -> None:
    Throttling.throttle = 99
    with pytest.raises(ApiError) as caught:
        kube.request("POST", PATH, {})
    assert caught.value.status == 429 and caught.value.retry_after == 1.0
    assert len(Throttling.seen) == THROTTLE_RETRIES + 1


def test_the_guard_runs_before_every_attempt(kube: Kube) -> None:
    """A leader's fence sees each retry: losing the lease while waiting stops the write."""
    Throttling.throttle, Throttling.retry_after = 1, "0.1"
    calls: list[str] = []

    def guard(method: str, path: str) -> None:
        calls.append(method)
        if len(calls) > 1:
            raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        kube.request("POST", PATH, {"metadata": {"name": "x"}}, guard=guard)
    assert len(Throttling.seen) == 1  # the retry never went out
