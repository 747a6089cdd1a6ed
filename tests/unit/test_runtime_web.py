"""The runtime's `serve` and `pages` apps: start page, probes, and "Getting set up"."""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.testclient import TestClient

from portico_runtime import pages, web
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
    assert client.get("/healthz").status_code == 200
    (tmp_path / "portal.json").unlink()
    assert client.get("/healthz").status_code == 503
    response = client.get("/")
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert "Getting set up" in response.text


def page_file(directory: Path, **fields: object) -> None:
    data = {
        "portal": "support/contoso-support",
        "displayName": "Contoso Support",
        "language": "en-US",
        "hosts": ["contoso-support.portals.example.com", "support.contoso.com"],
        "phase": "Configuring",
        "reason": "",
        "message": "",
        "retryAfter": 15,
        **fields,
    }
    (directory / "contoso-support.json").write_text(json.dumps(data))


def test_pages_answers_503_naming_the_portal_for_each_of_its_hosts(tmp_path: Path) -> None:
    page_file(tmp_path, phase="Failed", reason="InstallFailed", message="instance unreachable")
    client = TestClient(pages.create_app(tmp_path))
    for host in ("contoso-support.portals.example.com", "Support.Contoso.com"):
        for path in ("/", "/some/deep/link?q=1"):
            response = client.get(path, headers={"Host": host})
            assert response.status_code == 503
            assert response.headers["retry-after"] == "15"
            assert response.headers["cache-control"] == "no-store"
            assert "<h1>Contoso Support</h1>" in response.text
            assert "Failed (InstallFailed): instance unreachable" in response.text
    assert client.post("/", headers={"Host": "support.contoso.com"}).status_code == 503


def test_pages_for_an_unknown_host_still_answer_the_page(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    client = TestClient(pages.create_app(tmp_path))
    response = client.get("/", headers={"Host": "new.portals.example.com"})
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert "new.portals.example.com" in response.text
    assert client.get("/healthz").status_code == 200


def test_pages_show_the_page_in_the_portal_language(tmp_path: Path) -> None:
    page_file(tmp_path, language="fr-FR")
    client = TestClient(pages.create_app(tmp_path))
    response = client.get("/", headers={"Host": "support.contoso.com"})
    assert "Configuration en cours" in response.text and 'lang="fr-FR"' in response.text
