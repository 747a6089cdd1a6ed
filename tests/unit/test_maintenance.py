"""Maintenance mode: the operator's decision (pure) and what the page server answers.

Unit tier: decide() with hand-built observations, and the page server's app over a real
HTTP server on loopback standing where the runtime's pod would be."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from starlette.testclient import TestClient

from portico.api import model, validation
from portico.core import maintenance, names
from portico.core.decide import decide
from portico.core.observed import Observed
from portico_runtime.pages import Directory, create_app, site
from tests.support.worlds import (
    NOW,
    SETTINGS,
    P,
    applied,
    converge,
    edited,
    owned,
    portal_obj,
    world,
)

HOST = "web.portals.example.com"


def _portal(**spec: Any) -> model.Portal:
    defaulted, problems = validation.admit("Portal", portal_obj(**spec))
    assert problems == []
    return model.parse_portal(defaulted)


def _source(html: str) -> dict[str, Any]:
    return {"metadata": {"name": "sorry"}, "data": {"page.html": html}}


CUSTOM = {"enabled": True, "page": {"configMapRef": {"name": "sorry", "key": "page.html"}}}


def test_maintenance_off_decides_nothing() -> None:
    assert maintenance.decide(_portal(), None) is None
    assert maintenance.decide(_portal(maintenance={"enabled": False, "message": "x"}), None) is None


def test_the_default_page_carries_the_message_and_retry_after() -> None:
    mode = maintenance.decide(_portal(maintenance={"enabled": True, "message": "Back at 10"}), None)
    assert mode is not None and mode.page is None
    assert mode.status == {
        "enabled": True,
        "message": "Back at 10",
        "retryAfterSeconds": 300,
        "page": "Default",
    }
    assert (mode.condition.status, mode.condition.reason) == ("True", "DefaultPage")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (None, maintenance.NOT_FOUND),  # no such ConfigMap
        ({"data": {"other.html": "<p>x</p>"}}, maintenance.NOT_FOUND),  # no such key
        (_source("x" * (maintenance.MAX_PAGE_BYTES + 1)), maintenance.TOO_LARGE),
        (_source("é" * (maintenance.MAX_PAGE_BYTES // 2 + 1)), maintenance.TOO_LARGE),  # bytes
    ],
)
def test_a_missing_or_oversized_page_falls_back_to_the_default_and_says_why(
    source: dict[str, Any] | None, reason: str
) -> None:
    mode = maintenance.decide(_portal(maintenance=CUSTOM), source)
    assert mode is not None and mode.page is None and mode.status["page"] == "Default"
    assert (mode.condition.status, mode.condition.reason) == ("False", reason)
    assert (
        "sorry" in mode.condition.message and "default maintenance page" in mode.condition.message
    )


def test_a_custom_page_of_exactly_one_mib_is_used() -> None:
    html = "x" * maintenance.MAX_PAGE_BYTES
    mode = maintenance.decide(_portal(maintenance=CUSTOM), _source(html))
    assert mode is not None and mode.page == html and mode.status["page"] == "Custom"


def _ready() -> Observed:
    o, plan = converge(world())
    assert plan.phase == "Ready" and ("Ingress", P) in o.children
    return o


def _with(o: Observed, spec: dict[str, Any], source: dict[str, Any] | None) -> Observed:
    return dataclasses.replace(edited(o, maintenance=spec), maintenance_source=source)


def test_maintenance_keeps_the_runtime_and_hands_the_url_to_the_page_server() -> None:
    ready = _ready()
    plan = decide(_with(ready, CUSTOM, _source("<h1>Moving</h1>")), SETTINGS, NOW)
    assert plan.phase == "Ready"  # the runtime keeps running
    assert plan.deletes == (("Ingress", P),)
    page = owned(plan)[("ConfigMap", names.maintenance_page_name(P))]
    assert page["data"] == {"page.html": "<h1>Moving</h1>"}
    assert page["metadata"]["labels"]["app.kubernetes.io/component"] == "maintenance"
    assert ("Deployment", P) not in owned(plan)  # no roll, no scale-down
    assert not any(k[0] == "Job" for k in owned(plan))  # no provisioning attempt
    assert plan.status["maintenance"]["page"] == "Custom"
    # Off again: the copy is pruned and the portal's own route comes back.
    o = _with(ready, {"enabled": False}, None)
    children = {**o.children, **owned(plan)}
    children.pop(("Ingress", P))
    back = decide(Observed(**{**o.__dict__, "children": children}), SETTINGS, NOW)
    assert ("ConfigMap", names.maintenance_page_name(P)) in back.deletes
    assert ("Ingress", P) in owned(back) and "maintenance" not in back.status


def test_a_stopped_site_shows_the_stopped_page_not_maintenance() -> None:
    o = _with(_ready(), {"enabled": True, "message": "x"}, None)
    obj = copy.deepcopy(dict(o.obj))
    obj["spec"]["state"] = "Stopped"
    defaulted, _ = validation.admit("Portal", copy.deepcopy(obj))
    stopped = Observed(**{**o.__dict__, "obj": obj, "portal": model.parse_portal(defaulted)})
    plan = decide(stopped, SETTINGS, NOW)
    assert plan.phase == "Stopped" and "maintenance" not in plan.status


# --- the page server ------------------------------------------------------------------


def _portal_status(mode: dict[str, Any]) -> dict[str, Any]:
    obj = portal_obj(displayName="Contoso <Web>", additionalLanguages=["de-DE"])
    obj["status"] = {
        "phase": "Ready",
        "url": f"https://{HOST}",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
        "maintenance": mode,
    }
    return obj


def _directory(obj: dict[str, Any], port: int) -> Directory:
    d = Directory()
    found = site(obj)
    assert found is not None
    d.replace_sites([found])
    d.replace_slices(
        [
            {
                "metadata": {
                    "name": "s",
                    "namespace": "team",
                    "labels": {"kubernetes.io/service-name": P},
                },
                "ports": [{"name": "http", "port": port}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
            }
        ]
    )
    d.synced.set()
    return d


def test_the_default_maintenance_page_is_503_escaped_and_localized(runtime_pod: int) -> None:
    mode = {
        "enabled": True,
        "message": "Back <b>soon</b>",
        "retryAfterSeconds": 90,
        "page": "Default",
    }
    client = TestClient(create_app(_directory(_portal_status(mode), runtime_pod)))
    answer = client.get("/", headers={"Host": HOST, "Accept-Language": "de-DE"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "90"
    assert "Wartungsarbeiten" in answer.text and answer.headers["content-language"] == "de-DE"
    assert "Back &lt;b&gt;soon&lt;/b&gt;" in answer.text and "<b>" not in answer.text
    assert "Contoso &lt;Web&gt;" in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    # /healthz still reaches the running runtime.
    health = client.get("/healthz", headers={"Host": HOST})
    assert (health.status_code, health.text) == (200, "ok\n")


def test_the_custom_page_and_its_fallback(runtime_pod: int) -> None:
    mode = {"enabled": True, "retryAfterSeconds": 300, "page": "Custom"}
    d = _directory(_portal_status(mode), runtime_pod)
    client = TestClient(create_app(d))
    # The copy has not reached the watch yet: the default page, never an error.
    answer = client.get("/", headers={"Host": HOST})
    assert answer.status_code == 503 and "down for maintenance" in answer.text
    copy_ = maintenance.config_map(_portal(), "<h1>Moving house</h1>")
    copy_["metadata"]["namespace"] = "team"
    d.put_page(copy_)
    answer = client.get("/", headers={"Host": HOST})
    assert answer.status_code == 503 and answer.text == "<h1>Moving house</h1>"
    assert answer.headers["retry-after"] == "300"
    assert "script-src" not in answer.headers["content-security-policy"]  # no script
    d.put_page(copy_, deleted=True)
    assert "down for maintenance" in client.get("/", headers={"Host": HOST}).text


def test_a_portal_settled_in_maintenance_costs_no_write() -> None:
    o = _with(_ready(), CUSTOM, _source("<h1>Moving</h1>"))
    settled = applied(o, decide(o, SETTINGS, NOW), controllers=False)
    again = decide(settled, SETTINGS, NOW)
    assert again.writes == () and again.deletes == () and again.status == settled.status
