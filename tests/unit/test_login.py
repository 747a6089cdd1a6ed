"""Kopf's in-cluster login reaches the API server by the Service's address, not by DNS."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from portico.controller import handlers


def _service_account(**_: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server="https://kubernetes.default.svc", token="t")


@pytest.mark.parametrize(
    ("host", "port", "server"),
    [
        ("10.96.0.1", "443", "https://10.96.0.1:443"),
        ("fd00::1", "6443", "https://[fd00::1]:6443"),
        ("", "", "https://kubernetes.default.svc"),  # no Service environment: Kopf's own
    ],
)
def test_in_cluster_login_uses_the_service_address(
    monkeypatch: pytest.MonkeyPatch, host: str, port: str, server: str
) -> None:
    monkeypatch.setattr(kopf, "login_with_service_account", _service_account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    info = handlers.login(logger=None)
    assert info is not None and info.server == server and info.token == "t"
