"""`portico doctor`'s verdicts (core/doctor.py, core/doctor_live.py): each check passes on
a healthy input and finds the fault in a broken one. The probes meet real loopback servers."""

from __future__ import annotations

import datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from portico import domain
from portico.certificates.convert import summarize
from portico.cli import probes
from portico.core import doctor, doctor_live
from portico.core.doctor import Reach, Result
from portico_runtime.interactions.metrics import Metrics
from tests.support.certs import make_leaf
from tests.support.tlsserver import running_ingress

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


def portal(
    phase: str = "Ready", conditions: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": "shop", "namespace": "web", "uid": "u-1", "generation": 2},
        "spec": {"instanceRef": {"name": "crm"}, **spec},
        "status": {
            "phase": phase,
            "observedGeneration": 2,
            "url": "https://shop.portals.test",
            "conditions": conditions
            if conditions is not None
            else [
                {"type": "InstanceLinked", "status": "True", "reason": "Linked"},
                {"type": "Ready", "status": "True", "reason": "Ready"},
            ],
        },
    }


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def results(found: list[doctor.Finding]) -> dict[str, Result]:
    return {f.check: f.result for f in found}


# --- the operator's conditions ---------------------------------------------------------------


def test_true_conditions_pass_and_the_exit_code_is_zero() -> None:
    found = doctor.conditions(portal())
    assert results(found) == {"InstanceLinked": Result.PASS, "Ready": Result.PASS}
    assert doctor.exit_code(found) == 0


def test_a_failure_reason_is_an_error_with_its_fix_and_ready_is_not_repeated() -> None:
    found = doctor.conditions(
        portal(
            "Failed",
            [
                cond("InstanceLinked", "False", "InstanceNotFound", "no crm"),
                cond("Ready", "False", "InstanceNotFound", "no crm"),
            ],
        )
    )
    assert [(f.check, f.result) for f in found] == [("InstanceLinked", Result.ERROR)]
    assert found[0].category == "Instance" and "Create the PortalInstance" in found[0].fix
    assert doctor.exit_code(found) == 1


def test_progress_is_a_warning_and_an_unknown_reason_is_fixed_as_its_message_says() -> None:
    found = doctor.conditions(
        portal(
            "Configuring",
            [
                cond(
                    "DomainVerified",
                    "False",
                    "CNAMEMissing",
                    "Please add a CNAME record for a.test pointing to b.test",
                ),
                cond("SolutionsInstalled", "False", "Installing"),
            ],
        )
    )
    by = {f.check: f for f in found}
    # CNAMEMissing is progress for the operator (DNS may still propagate): a warning here.
    assert by["DomainVerified"].result is Result.WARNING
    assert by["DomainVerified"].fix.startswith("Please add a CNAME record")
    assert by["SolutionsInstalled"].fix == doctor.WAIT


def test_a_certificate_rejection_is_an_error_and_expiring_soon_a_warning() -> None:
    rejected = doctor.conditions(
        portal("Failed", [cond("CertificateReady", "False", "KeyMismatch", "m")])
    )
    assert rejected[0].result is Result.ERROR and rejected[0].fix == doctor.CERTIFICATE_FIX
    soon = doctor.conditions(
        portal("Ready", [cond("CertificateReady", "True", "CertificateExpiringSoon")])
    )
    assert soon[0].result is Result.WARNING


def test_a_stopped_site_is_a_warning_not_an_error() -> None:
    found = doctor.conditions(portal("Stopped", [cond("Ready", "False", "Stopped", "m")]))
    assert found[0].result is Result.WARNING and "spec.state to Running" in found[0].fix


def test_no_status_is_an_error_and_a_stale_one_a_warning() -> None:
    bare = {"metadata": {"name": "x", "generation": 1}, "spec": {}}
    found = doctor.conditions(bare)
    assert found[0].result is Result.ERROR and "operator" in found[0].fix
    stale = portal()
    stale["metadata"]["generation"] = 3
    assert doctor.conditions(stale)[0].result is Result.WARNING


# --- Warning Events ----------------------------------------------------------------------------


def event(
    uid: str, reason: str, at: datetime.datetime, type_: str = "Warning", **more: Any
) -> dict[str, Any]:
    return {
        "type": type_,
        "reason": reason,
        "message": f"{reason} happened",
        "involvedObject": {"uid": uid, "kind": "Pod", "name": "shop-1"},
        "lastTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **more,
    }


def test_recent_warnings_of_the_portal_and_its_children_are_grouped_by_reason() -> None:
    found = doctor.recent_warnings(
        [
            event("pod-1", "BackOff", NOW - datetime.timedelta(minutes=5), count=3),
            event("pod-1", "BackOff", NOW - datetime.timedelta(minutes=1), message="newest"),
            event("pod-1", "Pulled", NOW, type_="Normal"),
            event("other", "BackOff", NOW),  # another object's
            event("pod-1", "Unhealthy", NOW - datetime.timedelta(hours=2)),  # too old
        ],
        {"u-1", "pod-1"},
        NOW,
    )
    assert len(found) == 1
    assert found[0].result is Result.WARNING and found[0].message == "BackOff (4 times): newest"
    assert found[0].fix.endswith("(kubectl logs pod/shop-1 --previous)")


def test_no_recent_warning_passes() -> None:
    found = doctor.recent_warnings(
        [event("u-1", "X", NOW - datetime.timedelta(days=1))], {"u-1"}, NOW
    )
    assert [f.result for f in found] == [Result.PASS]


# --- endpoints and the instance ------------------------------------------------------------------


def slices(*ready: bool) -> list[dict[str, Any]]:
    return [{"endpoints": [{"conditions": {"ready": r}} for r in ready]}]


def test_endpoints_ready_pass_none_ready_is_an_error_unless_the_site_is_stopped() -> None:
    assert doctor.endpoints(portal(), slices(True, False)).result is Result.PASS
    none = doctor.endpoints(portal(), slices(False))
    assert none.result is Result.ERROR and "kubectl describe deployment shop" in none.fix
    assert doctor.endpoints(portal("Stopped", state="Stopped"), []).result is Result.PASS
    # Not Ready yet (or Failed): the conditions say why; no second error here.
    assert doctor.endpoints(portal("Configuring"), []).result is Result.PASS


def test_instance_missing_is_an_error_not_ready_too_unreachable_a_warning() -> None:
    assert doctor.instance("crm", None, None)[0].result is Result.ERROR
    ready = {
        "spec": {"url": "https://crm"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert results(doctor.instance("crm", ready, Reach(status=401))) == {
        "PortalInstance": Result.PASS,
        "Reachable": Result.PASS,
    }
    assert (
        results(doctor.instance("crm", ready, Reach(error="refused")))["Reachable"]
        is Result.WARNING
    )
    broken = {
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "CredentialsNotFound"}]
        },
    }
    assert doctor.instance("crm", broken, None)[0].result is Result.ERROR


# --- live: URL, certificate, DNS, hub -------------------------------------------------------------


def test_url_verdicts_follow_the_phase() -> None:
    url = "https://shop.portals.test"
    assert doctor_live.url(url, portal(), Reach(status=200)).result is Result.PASS
    assert doctor_live.url(url, portal(), Reach(status=503)).result is Result.ERROR
    assert doctor_live.url(url, portal(), Reach(error="refused")).result is Result.ERROR
    assert doctor_live.url(url, portal("Configuring"), Reach(status=503)).result is Result.PASS
    assert doctor_live.url(url, portal("Stopped"), Reach(status=200)).result is Result.WARNING
    upkeep = portal(maintenance={"enabled": True})
    assert doctor_live.url(url, upkeep, Reach(status=503)).result is Result.PASS
    assert doctor_live.url(url, upkeep, Reach(status=200)).result is Result.WARNING
    assert doctor_live.url(url, portal("Deprovisioned"), Reach(error="x")).result is Result.PASS


def test_the_served_certificate_must_be_the_bound_one_cover_the_host_and_be_in_date() -> None:
    _, leaf, _ = make_leaf("www.contoso.test")
    der = leaf.public_bytes(Encoding.DER)
    bound = summarize(leaf).as_status()
    now = datetime.datetime.now(datetime.UTC)
    ok = doctor_live.served_certificate("www.contoso.test", der, bound, now)
    assert ok.result is Result.PASS and "status.certificate" in ok.message
    _, other, _ = make_leaf("www.contoso.test")
    wrong = doctor_live.served_certificate(
        "www.contoso.test", other.public_bytes(Encoding.DER), bound, now
    )
    assert wrong.result is Result.ERROR and "not the certificate Portico bound" in wrong.message
    elsewhere = doctor_live.served_certificate("shop.portals.test", der, None, now)
    assert elsewhere.result is Result.ERROR and "shop.portals.test" in elsewhere.message
    late = doctor_live.served_certificate(
        "www.contoso.test", der, None, now + datetime.timedelta(days=400)
    )
    assert late.result is Result.ERROR
    assert doctor_live.served_certificate("a", None, None, now).result is Result.ERROR


def test_dns_uses_the_operators_judge() -> None:
    target = "shop.portals.test"
    good = domain.judge(domain.Observation("www.c.test", (target,)), target)
    assert doctor_live.dns(good, "127.0.0.1").result is Result.PASS
    wrong = domain.judge(domain.Observation("www.c.test", ("elsewhere.test",)), target)
    finding = doctor_live.dns(wrong, "127.0.0.1")
    assert (
        finding.result is Result.ERROR
        and finding.fix == f"Change the CNAME record for www.c.test to {target}"
    )
    missing = doctor_live.dns(domain.judge(domain.Observation("www.c.test"), target), "x")
    assert missing.fix == domain.missing_message("www.c.test", target)
    down = domain.judge(domain.Observation("www.c.test", failure="timeout"), target)
    assert doctor_live.dns(down, "x").result is Result.WARNING


def exposition(**outcomes: int) -> str:
    """The runtime's own /metrics text (its Metrics class), with these hub outcomes."""
    metrics = Metrics()
    for outcome, n in outcomes.items():
        metrics.count("customerInsights", "portal_search", outcome, n)
    metrics.count("cloudEvents", "portal_search", "rejected", 5)  # another sink: not the hub's
    return metrics.exposition().decode()


def test_hub_counters_read_from_the_runtimes_exposition() -> None:
    counts = doctor_live.hub_counts(exposition(sent=3, retried=2))
    assert counts == {"sent": 3.0, "retried": 2.0}


def test_hub_verdicts() -> None:
    uri = "https://hub.test"

    def verdict(**outcomes: int) -> doctor.Finding:
        return doctor_live.hub(uri, {"pod-a": doctor_live.hub_counts(exposition(**outcomes))}, {})

    assert verdict(sent=4).result is Result.PASS
    rejected = verdict(sent=1, rejected=2)
    assert rejected.result is Result.ERROR and "policyName" in rejected.fix
    away = verdict(retried=6)
    assert away.result is Result.ERROR and "unreachable" in away.message
    assert verdict(sent=5, retried=1).result is Result.WARNING
    assert verdict(sent=5, dropped=1).result is Result.WARNING
    unread = doctor_live.hub(uri, {}, {"pod-a": "the API server's pod proxy answered 503"})
    assert unread.result is Result.WARNING and "pod-a: the API server's pod proxy" in unread.message


# --- the probes, against real servers on loopback ---------------------------------------


def test_fetch_through_an_ingress_address_sends_the_host_and_returns_the_served_certificate() -> (
    None
):
    key, leaf, _ = make_leaf("shop.portals.test")
    other_key, other, _ = make_leaf("www.contoso.test")
    pairs = {"www.contoso.test": (other_key, other), "shop.portals.test": (key, leaf)}
    with running_ingress(pairs, answer=503) as ingress:
        reach = probes.fetch("https://shop.portals.test/", ingress.address)
    assert reach.status == 503 and reach.certificate == leaf.public_bytes(Encoding.DER)
    assert ingress.hosts == ["shop.portals.test"]


def test_fetch_reports_a_refused_connection_as_an_error_line() -> None:
    reach = probes.fetch("https://shop.portals.test/", "127.0.0.1:1", timeout=2)
    assert reach.status is None and reach.error
