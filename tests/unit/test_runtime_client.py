"""The runtime's instance client keeps the portal's credentials where they belong.

Each test performs the leak against real HTTP servers on loopback: a redirect to
another origin, a redirect from https down to http, a plain-http instance, an
instance that never answers.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from portico_runtime import client


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers {} and remembers each request's Authorization header; `redirect` sends on."""

    seen: list[tuple[str, str | None]]
    redirect: str = ""

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.redirect and self.path == "/start":
            self.send_response(302)
            self.send_header("Location", self.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def server(redirect: str = "") -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (Recorder,), {"seen": seen, "redirect": redirect})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def credentials(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("portal-token\n")
    return tmp_path


def test_no_authorization_on_a_redirect_to_another_origin(tmp_path: Path) -> None:
    with (
        server() as (elsewhere, seen_elsewhere),
        server(f"{elsewhere}/landing") as (home, seen_home),
    ):
        instance = client.Instance(home, credentials(tmp_path), insecure=True)
        assert instance.call("GET", "/start") == {}
    assert seen_home == [("/start", "Bearer portal-token")]
    assert seen_elsewhere == [("/landing", None)]


def test_a_redirect_within_the_instance_keeps_the_credentials(tmp_path: Path) -> None:
    with server(redirect="/landing") as (home, seen):
        instance = client.Instance(home, credentials(tmp_path), insecure=True)
        assert instance.call("GET", "/start") == {}
    assert seen == [("/start", "Bearer portal-token"), ("/landing", "Bearer portal-token")]


def test_plain_http_is_refused_unless_the_instance_says_insecure(tmp_path: Path) -> None:
    with server() as (home, seen), pytest.raises(client.InstanceError, match=r"spec\.insecure"):
        client.Instance(home, credentials(tmp_path)).call("GET", "/x")
    assert seen == []  # nothing was sent


def test_a_redirect_from_https_down_to_http_is_refused(tmp_path: Path) -> None:
    instance = client.Instance("https://crm.example.net", credentials(tmp_path))
    handler = next(h for h in instance.opener.handlers if isinstance(h, client._Redirects))
    request = client.urllib.request.Request("https://crm.example.net/x")
    with pytest.raises(client.InstanceError, match=r"only https redirects"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://crm.example.net/x")  # type: ignore[arg-type]


def test_an_instance_that_never_answers_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    monkeypatch.setattr(client, "TIMEOUT", 0.5)
    try:
        instance = client.Instance(
            f"http://127.0.0.1:{listener.getsockname()[1]}", credentials(tmp_path), insecure=True
        )
        with pytest.raises(client.InstanceError, match="did not answer"):
            instance.call("GET", "/x")
    finally:
        listener.close()
