"""IP allow-list (spec.access.allowedSourceRanges): admission, what the portal's route carries
for each ingress controller, the AccessEnforced condition, and the page server's 403 page."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portico.api import model, validation
from portico.core import access, names
from portico.core.decide import decide
from portico.core.observed import Observed
from portico.settings import Settings, SettingsError
from portico_runtime.pages import Directory, create_app, site
from portico_runtime.pages.app import BLOCKED_PATH
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

ROOT = Path(__file__).resolve().parents[2]
HOST = "web.portals.example.com"
RANGES = ["203.0.113.0/24", "2001:db8::/32"]
TRAEFIK = dataclasses.replace(
    SETTINGS, ingress_controller="traefik", pages_error_middleware="portico-system/pages-blocked"
)
NGINX = dataclasses.replace(SETTINGS, ingress_controller="ingress-nginx")


def _portal(ranges: list[str] | None = None) -> model.Portal:
    obj = portal_obj(access={"allowedSourceRanges": ranges} if ranges is not None else {})
    defaulted, problems = validation.admit("Portal", obj)
    assert not problems
    return model.parse_portal(defaulted)


# --- admission -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["203.0.113.7", "203.0.113.7/24", "2001:db8::1/32", "10.0.0.0/33", "example.com/24", ""],
)
def test_admission_refuses_what_is_not_a_clean_cidr(value: str) -> None:
    obj = portal_obj(access={"allowedSourceRanges": ["10.0.0.0/8", value]})
    _, problems = validation.admit("Portal", obj)
    assert [p.path for p in problems] == ["spec.access.allowedSourceRanges[1]"], problems
    assert "CIDR range like 203.0.113.0/24" in problems[0].message


@pytest.mark.parametrize("value", ["0.0.0.0/0", "203.0.113.7/32", "2001:db8::/32", "::1/128"])
def test_admission_takes_v4_and_v6_ranges(value: str) -> None:
    _, problems = validation.admit("Portal", portal_obj(access={"allowedSourceRanges": [value]}))
    assert not problems


# --- the route, per ingress controller ---------------------------------------------------


def test_traefik_gets_an_owned_middleware_named_on_the_ingress_after_the_errors_page() -> None:
    portal = _portal(RANGES)
    middleware = access.middleware(portal, TRAEFIK)
    assert middleware is not None
    assert middleware["metadata"]["name"] == names.allowlist_name(P)
    assert middleware["metadata"]["ownerReferences"] == [portal.owner_reference()]
    assert middleware["spec"] == {
        "ipAllowList": {"sourceRange": RANGES, "rejectStatusCode": access.BLOCKED_STATUS}
    }
    annotations = access.ingress_annotations(portal, TRAEFIK)
    assert annotations == {
        access.TRAEFIK_MIDDLEWARES: "portico-system-pages-blocked@kubernetescrd,"
        f"{portal.namespace}-{P}-allowlist@kubernetescrd"
    }


def test_traefik_without_the_errors_middleware_refuses_with_a_plain_403() -> None:
    bare = dataclasses.replace(TRAEFIK, pages_error_middleware="")
    middleware = access.middleware(_portal(RANGES), bare)
    assert middleware is not None and "rejectStatusCode" not in middleware["spec"]["ipAllowList"]
    assert access.ingress_annotations(_portal(RANGES), bare) == {
        access.TRAEFIK_MIDDLEWARES: f"{_portal().namespace}-{P}-allowlist@kubernetescrd"
    }


def test_ingress_nginx_gets_annotations_that_leave_the_runtimes_own_403s_alone() -> None:
    annotations = access.ingress_annotations(_portal(RANGES), NGINX)
    assert annotations == {
        "nginx.ingress.kubernetes.io/allowlist-source-range": ",".join(RANGES),
        "nginx.ingress.kubernetes.io/whitelist-source-range": ",".join(RANGES),
        "nginx.ingress.kubernetes.io/custom-http-errors": "403",
        "nginx.ingress.kubernetes.io/disable-proxy-intercept-errors": "true",
    }
    assert access.middleware(_portal(RANGES), NGINX) is None


@pytest.mark.parametrize("settings", [SETTINGS, TRAEFIK, NGINX])
def test_an_open_portal_gets_nothing(settings: Settings) -> None:
    for portal in (_portal(), _portal([])):
        assert access.middleware(portal, settings) is None
        assert access.ingress_annotations(portal, settings) == {}
        assert access.condition(portal, settings) is None


def test_another_controller_is_told_the_list_is_not_enforced() -> None:
    condition = access.condition(_portal(RANGES), SETTINGS)
    assert condition is not None and condition.status == "False"
    assert condition.reason == access.NOT_ENFORCED and "NOT enforced" in condition.message
    enforced = access.condition(_portal(RANGES), NGINX)
    assert enforced is not None and enforced.ok and "ingress-nginx" in enforced.message


def test_settings_name_only_known_controllers() -> None:
    assert Settings.from_env({"PORTICO_INGRESS_CONTROLLER": "traefik"}).ingress_controller
    with pytest.raises(SettingsError, match="PORTICO_INGRESS_CONTROLLER"):
        Settings.from_env({"PORTICO_INGRESS_CONTROLLER": "haproxy"})
    with pytest.raises(SettingsError, match="NAMESPACE/NAME"):
        Settings.from_env({"PORTICO_PAGES_ERROR_MIDDLEWARE": "blocked"})


# --- decide: children appear, go, and cost nothing without a list ------------------------


def _ready(settings: Settings) -> Observed:
    o, plan = converge(world(), settings)
    assert plan.phase == "Ready"
    return o


def _edit(o: Observed, ranges: list[str] | None) -> Observed:
    return edited(o, access={"allowedSourceRanges": ranges} if ranges is not None else {})


def _applied(o: Observed, settings: Settings) -> tuple[Observed, Any]:
    """The world after act wrote the plan (no controller has acted on it yet)."""
    plan = decide(o, settings, NOW)
    return applied(o, plan, controllers=False), plan


def test_the_middleware_comes_with_a_list_and_is_pruned_when_it_is_emptied() -> None:
    ready = _ready(TRAEFIK)
    assert ("Middleware", names.allowlist_name(P)) not in ready.children  # none without a list
    listed, plan = _applied(_edit(ready, RANGES), TRAEFIK)
    written = [w.key for w in plan.writes]
    assert written.index(("Middleware", f"{P}-allowlist")) < written.index(("Ingress", P))
    ingress = owned(plan)[("Ingress", P)]
    assert access.TRAEFIK_MIDDLEWARES in ingress["metadata"]["annotations"]
    assert ("Deployment", P) not in owned(plan)  # the list never rolls the runtime
    condition = {c["type"]: c for c in plan.status["conditions"]}[access.CONDITION]
    assert (condition["status"], condition["reason"]) == ("True", "Enforced")
    assert plan.phase == "Ready"
    _, plan = _applied(_edit(listed, []), TRAEFIK)
    assert ("Middleware", f"{P}-allowlist") in plan.deletes
    assert access.TRAEFIK_MIDDLEWARES not in owned(plan)[("Ingress", P)]["metadata"].get(
        "annotations", {}
    )
    assert access.CONDITION not in {c["type"] for c in plan.status["conditions"]}


def test_another_controller_stays_ready_with_a_warning_condition_and_event() -> None:
    listed, plan = _applied(_edit(_ready(SETTINGS), RANGES), SETTINGS)
    assert plan.phase == "Ready"
    condition = {c["type"]: c for c in plan.status["conditions"]}[access.CONDITION]
    assert (condition["status"], condition["reason"]) == ("False", access.NOT_ENFORCED)
    assert [e.reason for e in plan.events if e.type == "Warning"] == [access.NOT_ENFORCED]
    assert not [k for k in owned(plan) if k[0] == "Middleware"]
    again = decide(listed, SETTINGS, NOW)  # said once, not at every reconcile
    assert not [e for e in again.events if e.reason == access.NOT_ENFORCED]
    assert not again.writes


def test_a_new_portal_without_a_list_writes_what_it_always_wrote() -> None:
    with_traefik = [w.key for w in decide(world(), TRAEFIK, NOW).writes]
    assert with_traefik == [w.key for w in decide(world(), SETTINGS, NOW).writes]


# --- the page server ----------------------------------------------------------------------


def _client(port: int, ranges: list[str] | None, phase: str = "Ready") -> TestClient:
    obj = portal_obj(displayName="Contoso Web", additionalLanguages=["de-DE"])
    if ranges is not None:
        obj["spec"]["access"] = {"allowedSourceRanges": ranges}
    obj["metadata"]["namespace"] = "team"
    obj["status"] = {
        "phase": phase,
        "url": f"https://{HOST}",
        "conditions": [{"type": "Ready", "status": str(phase == "Ready"), "reason": phase}],
    }
    d = Directory()
    found = site(obj)
    assert found is not None
    d.replace_sites([found])
    slice_ = {
        "metadata": {"name": "s", "namespace": "team", "labels": {"kubernetes.io/service-name": P}},
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
    }
    d.replace_slices([slice_])
    d.synced.set()
    return TestClient(create_app(d))


def test_the_page_server_refuses_a_blocked_address_with_a_localized_403(runtime_pod: int) -> None:
    client = _client(runtime_pod, RANGES)
    allowed = client.get("/", headers={"Host": HOST, "X-Forwarded-For": "203.0.113.9"})
    assert allowed.status_code == 200 and allowed.text.startswith("the portal itself at ")
    v6 = client.get("/", headers={"Host": HOST, "X-Forwarded-For": "2001:db8::5"})
    assert v6.status_code == 200
    blocked = client.get(
        "/", headers={"Host": HOST, "X-Forwarded-For": "198.51.100.4", "Accept-Language": "de-DE"}
    )
    assert blocked.status_code == 403 and "Zugriff verweigert" in blocked.text
    assert "Contoso Web" in blocked.text and blocked.headers["cache-control"] == "no-store"
    assert "the portal itself" not in blocked.text


def test_a_forged_forwarded_for_does_not_pass(runtime_pod: int) -> None:
    """The ingress controller appends the address it saw: whatever came before is the
    client's own word."""
    client = _client(runtime_pod, RANGES)
    forged = client.get("/", headers={"Host": HOST, "X-Forwarded-For": "203.0.113.9, 198.51.100.4"})
    assert forged.status_code == 403


def test_pages_of_a_portal_not_serving_are_guarded_too(runtime_pod: int) -> None:
    client = _client(runtime_pod, RANGES, phase="Configuring")
    setup = client.get("/", headers={"Host": HOST, "X-Forwarded-For": "203.0.113.9"})
    assert setup.status_code == 503
    other = client.get("/", headers={"Host": HOST, "X-Forwarded-For": "192.0.2.1"})
    assert other.status_code == 403


def test_an_open_portal_and_the_controllers_page_requests(runtime_pod: int) -> None:
    client = _client(runtime_pod, None)
    anyone = client.get("/", headers={"Host": HOST, "X-Forwarded-For": "192.0.2.1"})
    assert anyone.status_code == 200
    # Traefik's errors Middleware and ingress-nginx's default backend call ask for the page.
    for answer in (
        client.get(BLOCKED_PATH, headers={"Host": HOST}),
        client.get("/", headers={"Host": HOST, "X-Code": "403"}),
    ):
        assert answer.status_code == 403 and "cannot be reached from your network" in answer.text


def test_the_chart_and_the_page_server_agree_on_the_blocked_page() -> None:
    pages = (ROOT / "charts/portico/templates/pages.yaml").read_text()
    assert f"query: {BLOCKED_PATH}\n" in pages
    assert re.search(rf'status: \["{access.BLOCKED_STATUS}"\]', pages)
    assert re.search(rf'"{access.BLOCKED_STATUS}": 403', pages)
