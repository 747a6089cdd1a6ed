"""The shared page server: where a portal's hosts lead (operator, core/routing.py), what the
page server knows of each portal (runtime, pages/sites.py) and what it answers (pages/app.py):
public pages that say no more than the phase and a generic line, or the portal itself."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from portico.certificates import CertReason
from portico.core import progress, routing
from portico.core.reasons import Failure
from portico_runtime.pages import Directory, create_app, site
from portico_runtime.pages import sites as sites_module

HOST = "contoso-support.portals.example.com"
CUSTOM = "support.contoso.com"
SECRET_WORDS = "instance contoso-crm, Secret portico-system/contoso-crm-credentials"


def portal_obj(
    phase: str = "Configuring",
    reason: str = "Provisioning",
    name: str = "contoso-support",
    created: str = "2026-01-01T00:00:00Z",
    custom: bool = True,
    host: str = HOST,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "url": f"https://{host}",
        "conditions": [
            {"type": "Ready", "status": str(phase == "Ready"), "reason": reason,
             "message": f"details for the administrator: {SECRET_WORDS}"},
        ],
    }  # fmt: skip
    if custom:
        status["customDomainUrl"] = f"https://{CUSTOM}"
    return {
        "metadata": {"name": name, "namespace": "support", "creationTimestamp": created},
        "spec": {
            "displayName": "Contoso Support",
            "language": "en-US",
            "additionalLanguages": ["de-DE", "fr-FR"],
        },
        "status": status,
    }


def slice_obj(address: str, port: int, ready: bool = True, name: str = "contoso-support-x"):  # type: ignore[no-untyped-def]
    return {
        "metadata": {
            "name": name,
            "namespace": "support",
            "labels": {"kubernetes.io/service-name": "contoso-support"},
        },
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}],
    }


def directory(*portals: dict[str, Any]) -> Directory:
    d = Directory()
    d.replace_sites(s for s in map(site, portals) if s is not None)
    d.synced.set()
    return d


# --- the operator: where the hosts lead ---------------------------------------------------


def _ingress(desired: list[dict[str, Any]]) -> bool:
    return any(m["kind"] == "Ingress" for m in desired)


@pytest.mark.parametrize(
    ("phase", "up", "routed"),
    [
        ("Configuring", False, False),  # a new portal: the page server's page
        ("Configuring", True, True),  # a spec edit while runtime pods serve: never the page
        ("Ready", False, True),
        ("Failed", True, False),  # a failure shows the page, whatever runs
        ("Expired", True, False),
    ],
)
def test_the_portals_own_route_exists_only_while_its_runtime_serves(
    phase: str, up: bool, routed: bool
) -> None:
    desired = [
        {"kind": "Service", "metadata": {"name": "p"}},
        {"kind": "Ingress", "metadata": {"name": "p"}},
    ]
    assert _ingress(routing.route(desired, phase, up, "InstallFailed")) is routed


def test_a_rejected_certificate_never_takes_a_serving_site_down() -> None:
    desired = [{"kind": "Ingress", "metadata": {"name": "p"}}]
    assert _ingress(routing.route(desired, "Failed", True, "InvalidPfx"))
    assert not _ingress(routing.route(desired, "Failed", False, "InvalidPfx"))  # never served


def test_runtime_up_needs_the_route_and_an_available_pod() -> None:
    deployment = {"status": {"availableReplicas": 1}}
    ingress: dict[str, Any] = {"metadata": {}}
    assert routing.runtime_up({("Deployment", "p"): deployment, ("Ingress", "p"): ingress}, "p")
    assert not routing.runtime_up({("Deployment", "p"): deployment}, "p")
    assert not routing.runtime_up({("Deployment", "p"): {}, ("Ingress", "p"): ingress}, "p")


# --- the page server: what it knows --------------------------------------------------------


def test_every_failure_reason_of_the_operator_has_a_category() -> None:
    """The page server's categories cover each reason the operator can fail with (else a
    new reason would fall to the catch-all line unnoticed)."""
    named = sites_module.SETTINGS | sites_module.INSTALLATION | sites_module.CERTIFICATE
    failures = {str(r) for r in Failure} | {str(r) for r in CertReason}
    failures -= {"CertificateExpiringSoon"}  # a warning, never a failure
    assert failures <= named | sites_module.UNENTITLED
    for reason in named:
        assert sites_module.category("Failed", reason) != "unavailable"
    assert sites_module.category("Failed", "ReconcileError") == "unavailable"
    assert sites_module.category("Configuring", "InstallFailed") == "setup"
    assert sites_module.category("Expired", "TrialExpired") == "expired"


def test_a_site_keeps_only_what_the_public_may_know() -> None:
    found = site(portal_obj("Failed", "InstallFailed"))
    assert found is not None
    assert found.hosts == (HOST, CUSTOM)
    assert found.category == "installation"
    assert SECRET_WORDS not in repr(found) and "InstallFailed" not in repr(found)
    assert site({"metadata": {"name": "new", "namespace": "x"}, "spec": {}}) is None


def test_an_unentitled_portal_has_no_page() -> None:
    for reason in sites_module.UNENTITLED:
        found = site(portal_obj("Failed", reason))
        assert found is not None and found.hosts == ()


def test_the_older_claim_of_a_host_wins_and_a_deleted_portal_lets_go() -> None:
    older = portal_obj("Ready", "Ready", name="a", created="2026-01-01T00:00:00Z")
    newer = portal_obj("Configuring", "Provisioning", name="b", created="2026-02-01T00:00:00Z")
    d = directory(newer, older)
    hit = d.lookup(HOST.upper() + ".")
    assert hit is not None and hit.key == ("support", "a")
    d.put_site(("support", "a"), None)
    hit = d.lookup(HOST)
    assert hit is not None and hit.key == ("support", "b")
    d.put_site(("support", "b"), None)
    assert d.lookup(HOST) is None


def test_only_ready_endpoints_that_are_not_stopping_serve() -> None:
    d = Directory()
    d.put_slice(slice_obj("10.0.0.1", 8080, ready=False, name="s1"))
    assert d.pods(("support", "contoso-support")) == ()
    d.put_slice(slice_obj("10.0.0.2", 8080, name="s2"))
    assert [e.address for e in d.pods(("support", "contoso-support"))] == ["10.0.0.2"]
    d.put_slice(slice_obj("10.0.0.2", 8080, name="s2"), deleted=True)
    assert d.pods(("support", "contoso-support")) == ()


# --- the page server: what it answers -----------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "reason", "status", "text"),
    [
        ("Configuring", "Provisioning", 503, "Contoso Support is getting set up."),
        ("Failed", "InstallFailed", 503, "could not be installed"),
        ("Failed", "LanguageNotInstalled", 503, "its settings need a change"),
        ("Failed", "WeakSignature", 503, "its certificate needs a change"),
        ("Failed", "ReconcileError", 503, "not available right now"),
        ("Expired", "TrialExpired", 503, "The trial of Contoso Support has ended."),
    ],
)
def test_public_pages_say_the_phase_and_a_generic_line_only(
    phase: str, reason: str, status: int, text: str
) -> None:
    client = TestClient(create_app(directory(portal_obj(phase, reason))))
    for host in (HOST, CUSTOM):
        for path in ("/", "/some/deep/link?q=1"):
            response = client.get(path, headers={"Host": host})
            assert response.status_code == status
            assert int(response.headers["retry-after"]) > 0
            assert response.headers["cache-control"] == "no-store"
            assert "<h1>Contoso Support</h1>" in response.text and text in response.text
            # Nothing of status but the phase: no reason, no message, no names inside.
            assert reason not in response.text and "contoso-crm" not in response.text
            assert "details for the administrator" not in response.text
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"


def test_pages_are_in_the_visitors_language_among_the_portals() -> None:
    client = TestClient(create_app(directory(portal_obj("Failed", "InstallFailed"))))
    response = client.get("/", headers={"Host": HOST, "Accept-Language": "fr;q=0.9, en;q=0.1"})
    assert response.headers["content-language"] == "fr-FR" and 'lang="fr-FR"' in response.text
    assert "n&#x27;a pas pu être installé" in response.text
    response = client.get("/", headers={"Host": HOST, "Accept-Language": "de"})
    assert "Wird eingerichtet" not in response.text and "Nicht verfügbar" in response.text


def test_a_host_no_portal_has_is_a_404_and_the_probes_answer_ok() -> None:
    d = directory()
    d.synced.clear()
    client = TestClient(create_app(d))
    response = client.get("/", headers={"Host": "typo.portals.example.com"})
    assert response.status_code == 404 and "There is no portal at" in response.text
    assert "typo.portals.example.com" in response.text
    health = client.get("/healthz")
    assert (health.status_code, health.text) == (200, "ok\n")
    assert client.get("/readyz").status_code == 503  # the first lists are not in yet
    d.synced.set()
    assert client.get("/readyz").text == "ok\n"
    tls = client.get("/", headers={"Host": "x.example", "X-Forwarded-Proto": "https"})
    assert tls.headers["strict-transport-security"].startswith("max-age=")


def test_a_ready_portal_is_passed_on_to_its_runtime(runtime_pod: int) -> None:
    """Ready, while the ingress has not applied the portal's own route yet: the visitor
    gets the portal, not the page."""
    d = directory(portal_obj("Ready", "Ready"))
    d.replace_slices([slice_obj("127.0.0.1", 1, name="gone"), slice_obj("127.0.0.1", runtime_pod)])
    client = TestClient(create_app(d))
    for _ in range(5):  # pods are tried in random order: a refused one is skipped
        response = client.get("/a/b?c=1", headers={"Host": HOST})
        assert response.status_code == 200
        assert response.text == f"the portal itself at {HOST}/a/b?c=1"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_ready_portal_whose_pods_do_not_answer_gets_the_page_never_a_502() -> None:
    d = directory(portal_obj("Ready", "Ready"))
    d.replace_slices([slice_obj("127.0.0.1", 1)])
    response = TestClient(create_app(d)).get("/", headers={"Host": HOST})
    assert response.status_code == 503 and "Contoso Support" in response.text


def test_a_portal_that_just_became_ready_is_read_again(runtime_pod: int) -> None:
    """The watch may lag what `kubectl wait` saw: a portal Configuring by the watch is read
    again (at most once a second) before the page is shown."""
    d = directory(portal_obj("Configuring", "RollingOut"))
    d.replace_slices([slice_obj("127.0.0.1", runtime_pod)])
    reads: list[tuple[str, str]] = []

    def refresh(key: tuple[str, str]) -> Any:
        reads.append(key)
        d.put_site(key, site(portal_obj("Ready", "Ready")))
        return d.lookup(HOST)

    client = TestClient(create_app(d, refresh))
    assert client.get("/", headers={"Host": HOST}).status_code == 200
    assert client.get("/", headers={"Host": HOST}).status_code == 200
    assert reads == [("support", "contoso-support")]


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


def test_a_ready_portals_pods_are_read_again_when_the_watch_has_none(runtime_pod: int) -> None:
    d = directory(portal_obj("Ready", "Ready"))
    reads: list[tuple[str, str]] = []

    def reroute(key: tuple[str, str]) -> None:
        reads.append(key)
        d.put_slice(slice_obj("127.0.0.1", runtime_pod))

    client = TestClient(create_app(d, lambda key: d.lookup(HOST), reroute))
    assert client.get("/", headers={"Host": HOST}).status_code == 200
    assert client.get("/", headers={"Host": HOST}).status_code == 200
    assert reads == [("support", "contoso-support")]


def test_a_portal_language_without_words_falls_back_to_one_with_them() -> None:
    obj = portal_obj("Configuring")
    obj["spec"].update(language="it-IT", additionalLanguages=["de-DE"])
    client = TestClient(create_app(directory(obj)))
    response = client.get("/", headers={"Host": HOST})
    assert response.headers["content-language"] == "de-DE" and 'lang="de-DE"' in response.text
    response = client.get("/", headers={"Host": HOST, "Accept-Language": "it"})
    assert response.headers["content-language"] == "de-DE"
