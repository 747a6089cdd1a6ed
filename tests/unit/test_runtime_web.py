"""The runtime's `serve` app: start page, probes, "Getting set up", security headers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.testclient import TestClient

from portico_runtime import security, web
from portico_runtime.config import Reader
from tests.support.runtime import credentials, portal_json, write_config


def client_for(tmp_path: Path, example: str = "customer-customerselfservice.yaml") -> TestClient:
    config = portal_json(example, "http://127.0.0.1:1", credentials(tmp_path))
    return TestClient(web.create_app(Reader(write_config(tmp_path, config))))


def test_start_page_names_the_portal_in_its_language(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    config = json.loads((tmp_path / "portal.json").read_text())
    response = client.get("/")
    assert response.status_code == 200
    assert f"<h1>{config['portal']['displayName']}</h1>" in response.text
    assert response.headers["content-language"] == config["language"]
    assert all(f"<li>{f}</li>" in response.text for f in config["features"])


def test_accept_language_picks_a_portal_language(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    languages = json.loads((tmp_path / "portal.json").read_text())["languages"]
    assert "de-DE" in languages
    response = client.get("/", headers={"Accept-Language": "it;q=1, de;q=0.8, en;q=0.5"})
    assert response.headers["content-language"] == "de-DE"
    assert "Willkommen bei" in response.text
    # A language the portal does not offer falls back to its default.
    response = client.get("/", headers={"Accept-Language": "ja"})
    assert response.headers["content-language"] == "en-US"


def test_display_name_is_escaped(tmp_path: Path) -> None:
    config = portal_json("customer-custom.yaml", "http://x", credentials(tmp_path))
    config["portal"]["displayName"] = "<script>alert(1)</script>"
    client = TestClient(web.create_app(Reader(write_config(tmp_path, config))))
    assert "<script>alert" not in client.get("/").text


def test_configuration_is_read_at_serve_time(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    path = tmp_path / "portal.json"
    config = json.loads(path.read_text())
    config["portal"]["displayName"] = "Renamed Portal"
    path.write_text(json.dumps(config))
    os.utime(path, ns=(1, 1))  # a different stamp even within the same clock tick
    assert "<h1>Renamed Portal</h1>" in client.get("/").text


def test_healthz_and_missing_configuration(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    healthy = client.get("/healthz")
    assert (healthy.status_code, healthy.text) == (200, "ok\n")
    (tmp_path / "portal.json").unlink()
    # Why it is not ready is the operator's to say, not a visitor's to read.
    broken = client.get("/healthz")
    assert (broken.status_code, broken.text) == (503, "not ready\n")
    response = client.get("/")
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert "Getting set up" in response.text


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    for path in ("/", "/healthz", "/no-such-page"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp and "'unsafe-inline'" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        # HSTS only where the visitor came over HTTPS (the ingress says so).
        assert "strict-transport-security" not in headers
        tls = client.get(path, headers={"X-Forwarded-Proto": "https"}).headers
        assert tls["strict-transport-security"] == security.HSTS


def test_the_page_style_is_the_one_the_policy_allows(tmp_path: Path) -> None:
    """The inline style is allowed by its hash: a change to it changes the policy with it."""
    import base64
    import hashlib
    import re

    page = client_for(tmp_path).get("/")
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["content-security-policy"]
