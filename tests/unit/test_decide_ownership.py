"""decide() with the ownership TXT record: nothing is routed or certified for a host whose
record is not verified when the operator requires it (pure, no cluster)."""

from __future__ import annotations

import dataclasses
from typing import Any

from portico import domain
from portico.controller.act import merge_patch
from portico.core.decide import Plan, decide
from portico.core.observed import CertificateOutcome, Observed
from tests.support.worlds import NOW, SETTINGS, UID, P, owned, portal_obj, world

HOST = "support.contoso.com"
TARGET = "web.portals.example.com"
TOKEN = domain.ownership.token(UID, HOST)
ISSUER = {"issuerRef": {"name": "le", "kind": "ClusterIssuer"}}
CNAME = domain.verified(HOST, TARGET)
OPTIONAL = dataclasses.replace(SETTINGS, domain_ownership="Optional")


def seen(*values: str) -> domain.Observation:
    return domain.Observation(HOST, chain=(TARGET,), resolved=("192.0.2.1",), challenge=values)


def custom(host: str = HOST) -> dict[str, Any]:
    return portal_obj(customDomain={"hostname": host, "tls": ISSUER})


def lookup(observation: domain.Observation, status: Any = None, host: str = HOST) -> Observed:
    """The world after one lookup, as observe() builds it."""
    token = domain.ownership.token(UID, host)
    return world(
        obj=custom(host),
        status=status,
        dns=domain.judge(observation, TARGET),
        ownership=domain.ownership.judge(observation, token),
        dns_seen=observation,
        certificate=CertificateOutcome(),
    )


def verified(plan: Plan) -> dict[str, Any]:
    return next(c for c in plan.status["conditions"] if c["type"] == "DomainVerified")


def certificate_requested(plan: Plan) -> bool:
    return ("Certificate", P) in owned(plan)


def test_unverified_record_holds_routing_and_certificate() -> None:
    plan = decide(lookup(seen()), SETTINGS, NOW)
    condition = verified(plan)
    assert (condition["status"], condition["reason"]) == ("False", "OwnershipUnverified")
    assert condition["message"].startswith(
        f'Please add a TXT record _portico-challenge.{HOST} with the value "{TOKEN}"'
    )
    record = plan.status["customDomain"]
    assert record["ownership"] == {
        **record["ownership"],
        "required": True,
        "name": f"_portico-challenge.{HOST}",
        "type": "TXT",
        "value": TOKEN,
        "state": "Misconfigured",
    }
    assert "verifiedHostname" not in record
    assert record["chain"] == [TARGET] and record["addresses"] == ["192.0.2.1"]
    assert not certificate_requested(plan) and plan.dns_pending
    assert HOST not in str(owned(plan).get(("Ingress", P), ""))


def test_the_record_once_added_verifies_and_requests_the_certificate() -> None:
    first = decide(lookup(seen()), SETTINGS, NOW)
    plan = decide(lookup(seen(TOKEN), first.status), SETTINGS, NOW)
    assert (verified(plan)["status"], verified(plan)["reason"]) == ("True", "CNAMEVerified")
    record = plan.status["customDomain"]
    assert record["ownership"]["state"] == "Verified" and record["ownership"]["verifiedAt"]
    assert record["verifiedHostname"] == HOST
    assert certificate_requested(plan) and not plan.dns_pending


def test_a_wrong_token_is_not_ownership() -> None:
    stale = domain.ownership.token("a-deleted-portal", HOST)
    plan = decide(lookup(seen(stale)), SETTINGS, NOW)
    assert verified(plan)["reason"] == "OwnershipUnverified"
    assert "not this portal's token" in verified(plan)["message"]
    assert any("stale challenge" in c for c in plan.status["customDomain"]["conflicts"])
    assert not certificate_requested(plan)


def test_a_dns_fault_keeps_a_verified_record_and_never_verifies_a_new_one() -> None:
    fault = domain.Observation(HOST, failure="no answer", challenge_failure="no answer")
    plan = decide(lookup(fault), SETTINGS, NOW)
    assert (verified(plan)["status"], verified(plan)["reason"]) == ("Unknown", "DNSUnavailable")
    assert not certificate_requested(plan)
    good = decide(lookup(seen(TOKEN)), SETTINGS, NOW)
    again = decide(lookup(fault, good.status), SETTINGS, NOW)
    assert verified(again)["status"] == "True" and "inconclusive" in verified(again)["message"]
    assert certificate_requested(again)
    # Chain and addresses stay as the last complete lookup saw them.
    assert again.status["customDomain"]["addresses"] == ["192.0.2.1"]


def test_a_removed_record_unverifies_only_once_confirmed() -> None:
    status = decide(lookup(seen(TOKEN)), SETTINGS, NOW).status
    states = []
    for _ in range(3):
        plan = decide(lookup(seen(), status), SETTINGS, NOW)
        status = plan.status
        states.append(verified(plan)["status"])
    assert states == ["True", "True", "False"]
    assert verified(plan)["reason"] == "OwnershipUnverified"


def test_a_changed_host_starts_unverified() -> None:
    status = decide(lookup(seen(TOKEN)), SETTINGS, NOW).status
    other = "help.contoso.com"
    moved = domain.Observation(other, chain=(TARGET,), challenge=(TOKEN,))  # the old token
    plan = decide(lookup(moved, status, host=other), SETTINGS, NOW)
    record = plan.status["customDomain"]
    assert record["hostname"] == other and "verifiedHostname" not in record
    assert record["ownership"]["value"] == domain.ownership.token(UID, other) != TOKEN
    assert verified(plan)["reason"] == "OwnershipUnverified"
    assert not certificate_requested(plan)


def test_optional_routes_on_the_cname_and_still_shows_the_record() -> None:
    plan = decide(lookup(seen()), OPTIONAL, NOW)
    assert (verified(plan)["status"], verified(plan)["reason"]) == ("True", "CNAMEVerified")
    record = plan.status["customDomain"]
    assert record["ownership"]["required"] is False
    assert record["ownership"]["value"] == TOKEN
    assert record["ownership"]["state"] == "Misconfigured"
    assert record["verifiedHostname"] == HOST
    assert certificate_requested(plan) and not plan.dns_pending


def test_cname_missing_says_both_records() -> None:
    missing = domain.Observation(HOST, challenge=())
    plan = decide(lookup(missing), SETTINGS, NOW)
    message = verified(plan)["message"]
    assert verified(plan)["reason"] == "CNAMEMissing"
    assert f"Please add a CNAME record for {HOST} pointing to {TARGET}" in message
    assert f'add a TXT record _portico-challenge.{HOST} with the value "{TOKEN}"' in message


def test_no_lookup_due_changes_nothing() -> None:
    """A reconcile with no lookup due republishes what status holds: no status churn."""
    status = decide(lookup(seen(TOKEN)), SETTINGS, NOW).status
    o = world(obj=custom(), status=status, certificate=CertificateOutcome())
    assert decide(o, SETTINGS, NOW).status["customDomain"] == status["customDomain"]


def test_the_status_patch_removes_what_the_record_no_longer_has() -> None:
    """A merge patch keeps what it does not name: a conflict resolved (or a missing count
    ended) inside status.customDomain must be sent as null, or it stays on the server."""
    before = decide(lookup(seen(domain.ownership.token("stale", HOST))), SETTINGS, NOW).status
    after = decide(lookup(seen(TOKEN), before), SETTINGS, NOW).status
    assert "conflicts" in before["customDomain"] and "conflicts" not in after["customDomain"]
    patch = merge_patch(before, after)
    assert patch["customDomain"]["conflicts"] is None
    assert "hostname" not in patch["customDomain"]  # unchanged values are not sent
    server = apply_merge_patch(before, patch)
    assert server["customDomain"] == after["customDomain"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out
