"""The "Getting set up" mechanism: the operator's pages children, the Service switch, and the
runtime's `pages` server reading exactly the page file the operator renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from starlette.testclient import TestClient

from portico.api import model, validation
from portico.core import pages, progress
from portico.settings import Settings
from portico_dev import binaries
from portico_runtime import pages as server

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(base_domain="portals.example.com")
IMAGE = "localhost/portico/runtime:dev"


def portal(example: str = "customer-customerselfservice.yaml") -> model.Portal:
    raw = yaml.safe_load((ROOT / "examples" / example).read_text())
    raw["metadata"]["uid"] = "0d6c3f4e-1111-2222-3333-444455556666"
    defaulted, problems = validation.admit("Portal", raw)
    assert problems == []
    return model.parse_portal(defaulted)


def rendered(phase: str = "Configuring", reason: str = "", message: str = "") -> list[Any]:
    p = portal()
    page = pages.page(p, SETTINGS, phase, reason, message, custom_host="support.contoso.com")
    return pages.children(p, SETTINGS, page, IMAGE)


def test_children_are_valid_owned_and_restricted() -> None:
    version = binaries.versions()["kubernetes"].lstrip("v").rsplit(".", 1)[0] + ".0"
    configmap, deployment = rendered()
    for obj in (configmap, deployment):
        kubernetes_validate.validate(obj, version, strict=True)
        assert obj["metadata"]["name"] == "contoso-support-pages"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == portal().uid
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "portico"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE and container["args"] == ["pages"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "pages")
    assert "subPath" not in mount, "a subPath mount is never updated in place"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pages.service_selector(portal(), "Configuring").items() <= labels.items()


def test_the_service_switches_between_pages_and_runtime() -> None:
    p = portal()
    for phase in ("Configuring", "Failed", "Expired"):
        assert pages.service_selector(p, phase)["app.kubernetes.io/component"] == "pages"
    for phase in ("Ready", "Paused"):
        assert pages.service_selector(p, phase)["app.kubernetes.io/component"] == "runtime"
    # A spec edit rolls the runtime while its old pods serve: the site stays up. A failure
    # or an expired trial still shows the page, whatever runs.
    assert pages.service_selector(p, "Configuring", True)["app.kubernetes.io/component"] == (
        "runtime"
    )
    for phase in ("Failed", "Expired"):
        assert pages.service_selector(p, phase, True)["app.kubernetes.io/component"] == "pages"


def test_the_runtime_serves_the_page_the_operator_renders(tmp_path: Path) -> None:
    configmap, _ = rendered("Failed", "InstallFailed", "the instance rejected the credentials")
    for key, text in configmap["data"].items():
        (tmp_path / key).write_text(text)
    client = TestClient(server.create_app(tmp_path))
    for host in ("contoso-support.portals.example.com", "support.contoso.com"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(pages.RETRY_AFTER_SECONDS)
        assert f"<h1>{portal().display_name}</h1>" in response.text
        assert "Failed (InstallFailed): the instance rejected the credentials" in response.text


def pod(finished: str, message: str, code: int = 1, name: str = "portal") -> dict[str, Any]:
    terminated = {"exitCode": code, "finishedAt": finished, "message": message}
    return {"status": {"containerStatuses": [{"name": name, "state": {"terminated": terminated}}]}}


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([], ""),
        ([pod("2026-01-01T00:00:00Z", "first\n"), pod("2026-01-01T00:01:00Z", "second")], "second"),
        ([pod("2026-01-01T00:00:00Z", "ok", code=0)], ""),
        ([pod("2026-01-01T00:00:00Z", "sidecar", name="other")], ""),
        ([pod("2026-01-01T00:00:00Z", "a\n  b\tc")], "a b c"),
        ([pod("2026-01-01T00:00:00Z", "x" * 400)], "x" * 297 + "..."),
    ],
)
def test_termination_message(pods: list[dict[str, Any]], expected: str) -> None:
    assert progress.termination_message(pods) == expected


def test_page_json_holds_no_more_than_the_status_says() -> None:
    configmap, _ = rendered("Configuring")
    page = json.loads(configmap["data"]["page.json"])
    assert set(page) == {
        "portal", "displayName", "language", "hosts", "phase", "reason", "message", "retryAfter",
    }  # fmt: skip
    assert page["hosts"] == ["contoso-support.portals.example.com", "support.contoso.com"]
