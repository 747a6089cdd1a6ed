"""/metrics behind the API server's authentication (issue 19, part 9): the decisions, the
cache, and the answers of a real server on loopback. The API server's two reviews are
played here; tests/controlplane/test_rbac.py asks a real one."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from portico.controller import metrics_auth
from portico.controller.kube import ApiError
from portico.controller.metrics_auth import MetricsAuth

USERS = {"good": "reader", "stranger": "nobody"}


class Reviews:
    """TokenReview: the tokens in USERS are valid; SubjectAccessReview: `reader` may get
    /metrics."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        assert method == "POST"
        self.calls.append((path, body))
        if self.down:
            raise ApiError(503, "Service Unavailable", "etcd is away")
        if path == metrics_auth.TOKEN_REVIEWS:
            user = USERS.get(body["spec"]["token"])
            if user is None:
                return {"status": {"authenticated": False}}
            return {"status": {"authenticated": True, "user": {"username": user, "groups": ["g"]}}}
        assert path == metrics_auth.ACCESS_REVIEWS
        spec = body["spec"]
        assert spec["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
        return {"status": {"allowed": spec["user"] == "reader" and spec["groups"] == ["g"]}}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("", 401),
        ("Basic Zm9vOmJhcg==", 401),
        ("Bearer ", 401),
        ("Bearer forged", 401),
        ("Bearer stranger", 403),
        ("Bearer good", 200),
        ("bearer good", 200),
    ],
)
def test_decisions(header: str, code: int) -> None:
    assert MetricsAuth(Reviews()).decide(header) == code  # type: ignore[arg-type]


def test_answers_are_kept_a_minute_per_token_and_the_token_is_not() -> None:
    reviews, clock = Reviews(), Clock()
    auth = MetricsAuth(reviews, clock=clock)  # type: ignore[arg-type]
    for _ in range(5):
        assert auth.decide("Bearer good") == 200
    assert len(reviews.calls) == 2, "one TokenReview and one SubjectAccessReview"
    assert all("good" not in key for key in auth.cache)
    clock.now += metrics_auth.CACHE_SECONDS + 1
    assert auth.decide("Bearer good") == 200
    assert len(reviews.calls) == 4


def test_an_api_server_that_cannot_answer_is_503_and_not_cached() -> None:
    reviews = Reviews()
    reviews.down = True
    auth = MetricsAuth(reviews)  # type: ignore[arg-type]
    assert auth.decide("Bearer good") == 503
    reviews.down = False
    assert auth.decide("Bearer good") == 200


def scrape(port: int, token: str | None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_the_server_answers_metrics_only_to_an_allowed_token() -> None:
    server = metrics_auth.serve(0, "127.0.0.1", MetricsAuth(Reviews()))  # type: ignore[arg-type]
    try:
        port = server.server_address[1]
        code, headers, body = scrape(port, None)
        assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert "python_info" not in body
        code, _, body = scrape(port, "stranger")
        assert code == 403 and "python_info" not in body
        code, _, body = scrape(port, "good")
        assert code == 200 and "python_info" in body
    finally:
        server.shutdown()
        server.server_close()


def test_without_auth_the_server_is_open() -> None:
    server = metrics_auth.serve(0, "127.0.0.1", None)
    try:
        code, _, body = scrape(server.server_address[1], None)
        assert code == 200 and "python_info" in body
    finally:
        server.shutdown()
        server.server_close()
