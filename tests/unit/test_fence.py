"""One retry layer, one fence: a write answered 429 + Retry-After is repeated only by
`Kube.request`, and only while this replica still holds the Lease.

A loopback HTTP server answers PUT and DELETE with 429 and a Retry-After, and counts what
reaches it. The client is the one `portico run` makes (`kube.connect` from a kubeconfig),
so the official client's urllib3 pool is in the path: by default it would repeat these
requests itself, before the fence could look.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from portico.controller.act import Writer
from portico.controller.kube import ApiError, Kube, connect
from portico.controller.leader import Election, FencedKube, LeaderElector, NotLeader

PATH = "/api/v1/namespaces/team/configmaps/web-config"


class Throttled(http.server.BaseHTTPRequestHandler):
    """Every request is answered 429, Retry-After 1 s (whole seconds, as urllib3 reads it);
    ANSWERED runs after each answer."""

    seen: ClassVar[list[str]] = []
    answered: ClassVar[Callable[[], None]] = staticmethod(lambda: None)

    def _throttle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Throttled.seen.append(self.command)
        body = json.dumps({"kind": "Status", "code": 429, "message": "slow down"}).encode()
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        Throttled.answered()

    do_PUT = do_DELETE = do_PATCH = do_POST = _throttle

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    """`kube.connect` on a kubeconfig for the loopback server, as `portico run` connects."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttled)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Throttled.seen = []
    Throttled.answered = staticmethod(lambda: None)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}
        ],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    yield Kube(connect(str(kubeconfig)))
    server.shutdown()
    thread.join()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Leading:
    """An elector that leads from the start, on a clock the test moves."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.election = Election(namespace="ops", identity="a")
        self.elector = LeaderElector(Kube.__new__(Kube), self.election, clock=self.clock)
        self.elector._renewed_at = self.clock.now  # as after a successful renewal

    def lose(self) -> None:
        """The renew deadline passes without a renewal: this replica must stop writing."""
        self.clock.now += self.election.renew_deadline


def test_the_client_pool_never_repeats_a_request(kube: Kube) -> None:
    """One attempt is one request, even a PUT answered 429 with a Retry-After (urllib3's
    default would send it again, up to 3 times, honouring the Retry-After)."""
    for method in ("PUT", "DELETE"):
        Throttled.seen = []
        with pytest.raises(ApiError) as caught:
            kube._request(method, PATH, {}, None, "application/json", 5.0)
        assert caught.value.status == 429 and caught.value.retry_after == 1.0
        assert Throttled.seen == [method]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_throttled_write_is_not_repeated_once_the_lease_is_lost(kube: Kube, method: str) -> None:
    leading = Leading()
    fenced = FencedKube(kube, leading.elector)
    Throttled.answered = staticmethod(leading.lose)  # lost while waiting out the Retry-After
    with pytest.raises(NotLeader):
        if method == "DELETE":
            Writer(fenced).delete("ConfigMap", "team", "web-config", "uid-1")
        else:
            fenced.request(method, PATH, {"metadata": {"name": "web-config"}})
    assert Throttled.seen == [method]  # the repeat never went out


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_while_leading_the_repeat_goes_out(kube: Kube, method: str) -> None:
    """The same request with the Lease kept: the server sees every attempt, so the test
    above would see a repeat that went out."""
    leading = Leading()
    fenced = FencedKube(kube, leading.elector)
    with pytest.raises(ApiError):
        fenced.request(method, PATH, {"metadata": {"name": "web-config"}})
    assert Throttled.seen == [method] * 4  # the first attempt and THROTTLE_RETRIES more
