"""Lists are read a page at a time (`limit` + `continue`): a fleet is never one response."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from typing import ClassVar

import kubernetes
import pytest

from portico.controller import kube as kubemod
from portico.controller.kube import Kube

ITEMS = [{"metadata": {"name": f"cm-{i}"}} for i in range(7)]


class Paging(http.server.BaseHTTPRequestHandler):
    queries: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        Paging.queries.append(query)
        start = int(query.get("continue", ["0"])[0])
        end = start + int(query["limit"][0])
        meta = {"continue": str(end)} if end < len(ITEMS) else {}
        body = json.dumps({"items": ITEMS[start:end], "metadata": meta}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    monkeypatch.setattr(kubemod, "PAGE", 3)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Paging)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Paging.queries = []
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield Kube(kubernetes.client.ApiClient(configuration))
    server.shutdown()
    thread.join()


def test_every_page_is_read_and_the_selector_kept(kube: Kube) -> None:
    names = [o["metadata"]["name"] for o in kube.each("ConfigMap", "ns", "app=x")]
    assert names == [o["metadata"]["name"] for o in ITEMS]
    assert [q.get("continue", [""])[0] for q in Paging.queries] == ["", "3", "6"]
    assert all(q["limit"] == ["3"] and q["labelSelector"] == ["app=x"] for q in Paging.queries)
