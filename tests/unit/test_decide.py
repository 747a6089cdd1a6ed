"""decide() as a decision table: what was observed → phase, reason, children written and deleted.

No cluster: each case builds an Observed by hand, as `observe` would.
"""

from __future__ import annotations

import base64
import copy
import datetime
from typing import Any

import pytest

from portico import domain
from portico.certificates import CertReason, Problem, Rejection
from portico.core import names, token
from portico.core.decide import Plan, decide, failed
from portico.core.observed import CertificateOutcome, Endpoint, Observed, SecretView
from portico.core.runtime import routed
from portico.settings import Settings
from tests.support.worlds import (
    INSTANCE,
    NOW,
    SETTINGS,
    UID,
    P,
    available,
    converge,
    endpoints,
    minted,
    owned,
    portal_obj,
    succeeded,
    world,
)


def ready(o: Observed, plan: Plan) -> dict[str, Any]:
    return next(c for c in plan.status["conditions"] if c["type"] == "Ready")


def test_new_portal_writes_every_child_and_starts_attempt_one() -> None:
    plan = decide(world(), SETTINGS, NOW)
    assert plan.phase == "Configuring"
    assert sorted(owned(plan)) == sorted(
        [
            ("Secret", names.instance_secret_name(P)),
            ("ConfigMap", names.config_name(P)),
            ("Deployment", P),
            ("Service", P),
            ("Job", names.provision_job_name(P, 1)),
        ]
    )
    # No Ingress of its own until Ready: the page server's route shows the page meanwhile.
    service = owned(plan)[("Service", P)]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "runtime"
    assert all(w.create for w in plan.writes)  # nothing is ours yet: looked up, then applied
    assert plan.deletes == ()
    # The apply is when it started: a new portal's one Event is its Ready.
    assert plan.events == ()
    synced = next(c for c in plan.status["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"]) == ("True", "ReconcileSuccess")


def test_converged_portal_is_ready_and_costs_no_write() -> None:
    o, plan = converge(world())
    assert plan.phase == "Ready", ready(o, plan)
    assert plan.writes == () and plan.deletes == ()
    assert plan.status == o.status  # no status patch either
    assert ("Ingress", P) in o.children  # its own route, from Ready on


def test_an_upgrade_prunes_the_per_portal_pages_children() -> None:
    """Releases before the shared page server made `<portal>-pages` (a Deployment and a
    ConfigMap) for each portal: the operator deletes those it owns, never leaves them."""
    o, _ = converge(world())
    old = {
        ("Deployment", names.pages_name(P)): {
            "metadata": {"name": names.pages_name(P), "uid": "u1"}
        },
        ("ConfigMap", names.pages_name(P)): {
            "metadata": {"name": names.pages_name(P), "uid": "u2"}
        },
    }
    plan = decide(Observed(**{**o.__dict__, "children": {**o.children, **old}}), SETTINGS, NOW)
    assert set(plan.deletes) == set(old)
    assert plan.writes == () and plan.phase == "Ready"


def test_a_spec_edit_costs_one_event_a_restart_two() -> None:
    """The write budget of an edit: its return to Configuring is written at once (so
    `kubectl wait` never returns on the old Ready) but needs no Event; Ready again has one.
    A restart request still says when its attempt started."""
    o, _ = converge(world())
    obj = copy.deepcopy(dict(o.obj))
    obj["spec"]["displayName"] = "Web 2"
    obj["metadata"]["generation"] = 2
    edited = world(obj=obj, status=obj["status"], children=o.children, endpoints=o.endpoints)
    plan = decide(edited, SETTINGS, NOW)
    assert plan.phase == "Configuring" and plan.status["observedGeneration"] == 2
    assert plan.events == ()
    assert plan.status["provisioning"]["attempt"] == 2
    obj = copy.deepcopy(dict(o.obj))
    obj["metadata"].setdefault("annotations", {})[names.RESTART] = "again"
    restarted = world(obj=obj, status=obj["status"], children=o.children, endpoints=o.endpoints)
    assert [e.reason for e in decide(restarted, SETTINGS, NOW).events] == ["ProvisioningStarted"]


def test_spec_edit_is_not_ready_until_the_new_pods_roll_out() -> None:
    o, _ = converge(world())
    obj = copy.deepcopy(dict(o.obj))
    obj["spec"]["displayName"] = "Web 2"
    obj["metadata"]["generation"] = 2
    edited = world(obj=obj, status=obj["status"], children=o.children)
    plan = decide(edited, SETTINGS, NOW)
    runtime = next(c for c in plan.status["conditions"] if c["type"] == "RuntimeAvailable")
    assert (runtime["status"], runtime["reason"]) == ("False", "RollingOut")
    assert plan.phase == "Configuring"
    # The controller has not seen the new Deployment spec yet: still not available.
    children = {**o.children, **owned(plan)}
    children[("Deployment", P)]["metadata"]["generation"] = 3
    children[("Deployment", P)]["status"] = {
        "observedGeneration": 2,
        "replicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
    }
    later = Observed(**{**edited.__dict__, "children": children})
    runtime = next(
        c
        for c in decide(later, SETTINGS, NOW).status["conditions"]
        if c["type"] == "RuntimeAvailable"
    )
    assert runtime["reason"] == "RollingOut"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"instance": None}, "InstanceNotFound"),
        ({"credentials": None}, "CredentialsNotFound"),
        ({"subdomain_owner": "other/older"}, "SubdomainTaken"),
        ({"namespace_labels": {"team": "b"}, "selector": True}, "NamespaceNotAllowed"),
        ({"image": "evil.example.com/miner:1"}, "ImageNotAllowed"),
        ({"no_namespaces": True}, "NamespaceNotAllowed"),
        ({"credentials_in": "team"}, "CredentialsNotAllowed"),
        ({"paused": True, "instance": None}, "InstanceNotFound"),
        (
            {"paused": True, "namespace_labels": {"team": "b"}, "selector": True},
            "NamespaceNotAllowed",
        ),
    ],
)
def test_lost_entitlement_withdraws_credentials_runtime_and_routing(
    change: dict[str, Any], reason: str
) -> None:
    """Paused or not: `spec.paused` stops changes, never a withdrawal."""
    o, _ = converge(world())
    instance = copy.deepcopy(INSTANCE)
    obj = copy.deepcopy(dict(o.obj))
    if change.pop("selector", False):
        instance["spec"]["allowedNamespaces"] = {
            "from": "Selector",
            "selector": {"matchLabels": {"team": "a"}},
        }
    if change.pop("no_namespaces", False):  # an instance that names none allows none
        del instance["spec"]["allowedNamespaces"]
    if where := change.pop("credentials_in", None):  # a Secret outside the operator's reach
        instance["spec"]["credentialsSecretRef"]["namespace"] = where
    if image := change.pop("image", None):
        obj["spec"]["runtime"] = {"image": image}
    if change.pop("paused", False):
        obj["spec"]["paused"] = True
    kwargs = {"instance": instance, **{k: v for k, v in change.items() if k == "instance"}}
    rest = {k: v for k, v in change.items() if k != "instance"}
    lost = world(obj=obj, status=obj["status"], children=o.children, **kwargs, **rest)
    plan = decide(lost, SETTINGS, NOW)
    assert plan.phase == "Failed"
    assert ready(lost, plan)["reason"] == reason
    deleted = set(plan.deletes)
    # The instance Secret keeps the session keys alone: its token is gone.
    secret = owned(plan)[("Secret", names.instance_secret_name(P))]
    assert set(secret["data"]) == {"keys"}
    assert ("Deployment", P) in deleted
    assert ("Job", names.provision_job_name(P, 1)) in deleted
    assert ("ConfigMap", names.config_name(P)) not in deleted
    assert "Withdrawn" in [e.reason for e in plan.events]
    written = owned(plan)
    assert not [k for k in written if k[0] == "Job" or k == ("Deployment", P)]
    assert [k for k in written if k[0] == "Secret"] == [("Secret", names.instance_secret_name(P))]
    unentitled = {"SubdomainTaken", "InstanceNotFound", "NamespaceNotAllowed", "ImageNotAllowed"}
    # No route of its own: the page server answers for a URL the portal still owns.
    assert ("Ingress", P) in deleted
    if reason in unentitled:
        # The URL is another portal's, or this portal may hold no name: no routing at all
        # (and the page server shows nothing of it).
        assert ("Service", P) in deleted
    else:
        assert ("Service", P) not in deleted


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"language": "fr-FR"}, "LanguageNotInstalled"),
        ({"administrator": "eve@contoso.com"}, "AdministratorNotAllowed"),
        (
            {
                "customDomain": {
                    "hostname": "x.portals.example.com",
                    "tls": {"secretRef": {"name": "t"}},
                }
            },
            "HostnameNotAllowed",
        ),
    ],
)
def test_reference_problem_fails_and_changes_nothing(spec: dict[str, Any], reason: str) -> None:
    o, _ = converge(world())
    obj = copy.deepcopy(dict(o.obj))
    obj["spec"].update(spec)
    plan = decide(world(obj=obj, status=obj["status"], children=o.children), SETTINGS, NOW)
    assert (plan.phase, ready(o, plan)["reason"]) == ("Failed", reason)
    assert plan.writes == () and plan.deletes == ()


def test_someone_elses_object_is_never_written_and_named() -> None:
    o = world(foreign=frozenset({("ConfigMap", names.config_name(P))}))
    plan = decide(o, SETTINGS, NOW)
    assert ("ConfigMap", names.config_name(P)) not in owned(plan)
    assert plan.phase == "Failed"
    message = ready(o, plan)["message"]
    assert ready(o, plan)["reason"] == "ChildConflict"
    assert f"ConfigMap {names.config_name(P)}" in message and "rename" in message


def test_prerequisite_missing_starts_no_attempt() -> None:
    obj = portal_obj(audience="Partner", template="PartnerFieldService")
    plan = decide(world(obj=obj), SETTINGS, NOW)
    assert ready(world(obj=obj), plan)["reason"] == "PrerequisiteMissing"
    assert plan.phase == "Failed"
    assert not [k for k in owned(plan) if k[0] == "Job"]


def test_install_failure_quotes_the_job() -> None:
    o = world()
    plan = decide(o, SETTINGS, NOW)
    job = names.provision_job_name(P, 1)
    children = owned(plan)
    children[("Job", job)]["status"] = {
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    }
    obj = copy.deepcopy(dict(o.obj))
    obj["status"] = plan.status
    after = world(obj=obj, status=plan.status, children=children, job_failures={job: "no db"})
    plan = decide(after, SETTINGS, NOW)
    assert (plan.phase, ready(after, plan)["reason"]) == ("Failed", "InstallFailed")
    assert "no db" in ready(after, plan)["message"]
    assert ("Job", job) not in plan.deletes  # kept for its logs


def test_paused_changes_nothing() -> None:
    plan = decide(world(obj=portal_obj(paused=True)), SETTINGS, NOW)
    assert (plan.phase, plan.writes, plan.deletes) == ("Paused", (), ())


def test_expired_trial_scales_to_zero() -> None:
    obj = portal_obj(type="Trial")
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    plan = decide(world(obj=obj), SETTINGS, NOW)
    assert plan.phase == "Expired"
    assert owned(plan)[("Deployment", P)]["spec"]["replicas"] == 0
    assert ("Secret", names.instance_secret_name(P)) not in owned(plan)


def test_an_expired_trial_loses_its_credentials_and_runtime_even_when_paused() -> None:
    obj = portal_obj(type="Trial")
    obj["metadata"]["creationTimestamp"] = "2026-11-01T00:00:00Z"  # expires 2026-12-01
    o, _ = converge(world(obj=obj))
    assert ("Secret", names.instance_secret_name(P)) in o.children
    paused = copy.deepcopy(dict(o.obj))
    paused["spec"]["paused"] = True
    before = decide(world(obj=paused, status=paused["status"], children=o.children), SETTINGS, NOW)
    assert before.phase == "Paused" and not before.deletes and not before.writes
    assert before.requeue_after is not None  # it comes back when the trial ends
    later = NOW + datetime.timedelta(days=2)
    lapsed = world(obj=paused, status=paused["status"], children=o.children)
    plan = decide(lapsed, SETTINGS, later)
    assert plan.phase == "Expired"
    deleted = set(plan.deletes)
    assert ("Deployment", P) in deleted
    # The instance Secret keeps the session keys alone.
    assert set(owned(plan)[("Secret", names.instance_secret_name(P))]["data"]) == {"keys"}
    # No route of its own: the page server shows the trial's end on its URL.
    assert ("Ingress", P) in deleted and ("Service", P) not in deleted


def test_missing_analytics_key_is_named() -> None:
    obj = portal_obj(
        analytics={
            "customerInsights": {
                "hubUri": "https://hub.example.net",
                "policyName": "p",
                "sharedKeySecretRef": {"name": "ci", "key": "sharedKey"},
            }
        }
    )
    o = world(obj=obj, secrets={"ci": None})
    plan = decide(o, SETTINGS, NOW)
    assert ready(o, plan)["reason"] == "SecretNotFound"


def _custom(tls: dict[str, Any]) -> dict[str, Any]:
    return portal_obj(customDomain={"hostname": "support.contoso.com", "tls": tls})


VERIFIED = domain.verified("support.contoso.com", "web.portals.example.com")
TOKEN = domain.ownership.token(UID, "support.contoso.com")
# The `_portico-challenge.support.contoso.com` TXT record holds the portal's token.
OWNED = domain.DomainCheck(
    "support.contoso.com",
    TOKEN,
    domain.DomainState.VERIFIED,
    domain.DomainReason.OWNERSHIP_VERIFIED,
    "holds the token",
)
UNKNOWN = domain.DomainCheck(
    "support.contoso.com",
    "web.portals.example.com",
    domain.DomainState.UNKNOWN,
    domain.DomainReason.DNS_UNAVAILABLE,
    "no answer",
)


def test_changed_hostname_with_dns_down_is_unknown_not_verified() -> None:
    status = {
        "customDomain": {
            "hostname": "old.contoso.com",
            "target": "web.portals.example.com",
            "state": "Verified",
            "reason": "CNAMEVerified",
            "message": "ok",
        },
        "conditions": [{"type": "DomainVerified", "status": "True", "reason": "CNAMEVerified"}],
    }
    o = world(obj=_custom({"secretRef": {"name": "t"}}), status=status, dns=UNKNOWN)
    plan = decide(o, SETTINGS, NOW)
    verified = next(c for c in plan.status["conditions"] if c["type"] == "DomainVerified")
    assert verified["status"] == "Unknown"
    assert plan.status["customDomain"]["hostname"] == "support.contoso.com"
    assert "support.contoso.com" not in str(owned(plan).get(("Ingress", P)))


# What status.customDomain says once support.contoso.com was verified.
WAS_VERIFIED: dict[str, Any] = {
    "customDomain": {
        "hostname": "support.contoso.com",
        "target": "web.portals.example.com",
        "state": "Verified",
        "reason": "CNAMEVerified",
        "message": "ok",
        "ownership": {"value": TOKEN, "state": "Verified", "reason": "OwnershipVerified"},
    }
}


def test_verified_host_survives_an_inconclusive_recheck() -> None:
    status = copy.deepcopy(WAS_VERIFIED)
    o = world(obj=_custom({"secretRef": {"name": "t"}}), status=status, dns=UNKNOWN)
    plan = decide(o, SETTINGS, NOW)
    verified = next(c for c in plan.status["conditions"] if c["type"] == "DomainVerified")
    assert verified["status"] == "True"


def test_domain_taken_serves_no_custom_host() -> None:
    o = world(
        obj=_custom({"secretRef": {"name": "t"}}),
        host_owner="other/first",
        dns=VERIFIED,
        ownership=OWNED,
    )
    plan = decide(o, SETTINGS, NOW)
    assert ready(o, plan)["reason"] == "DomainTaken"
    assert "support.contoso.com" not in str(owned(plan).get(("Ingress", P)))


@pytest.mark.parametrize("reason", list(CertReason)[:-1])
def test_every_certificate_rejection_fails(reason: CertReason) -> None:
    rejection = Rejection((Problem(reason, "bad"),))
    o = world(
        obj=_custom({"secretRef": {"name": "t"}}),
        dns=VERIFIED,
        ownership=OWNED,
        certificate=CertificateOutcome(verdict=rejection),
    )
    plan = decide(o, SETTINGS, NOW)
    assert (plan.phase, ready(o, plan)["reason"]) == ("Failed", str(reason))


def test_switching_from_issuer_to_pfx_prunes_the_certificate() -> None:
    issuer = {"issuerRef": {"name": "le", "kind": "ClusterIssuer"}}
    o = world(obj=_custom(issuer), dns=VERIFIED, ownership=OWNED, certificate=CertificateOutcome())
    plan = decide(o, SETTINGS, NOW)
    assert ("Certificate", P) in owned(plan)
    o2 = world(
        obj=_custom({"pfxSecretRef": {"name": "pfx"}}),
        dns=VERIFIED,
        ownership=OWNED,
        children=owned(plan),
        certificate=CertificateOutcome(),
    )
    assert ("Certificate", P) in decide(o2, SETTINGS, NOW).deletes


def test_cert_manager_not_enabled() -> None:
    issuer = {"issuerRef": {"name": "le", "kind": "ClusterIssuer"}}
    o = world(obj=_custom(issuer), dns=VERIFIED, ownership=OWNED)
    settings = Settings(base_domain="portals.example.com", allowed_issuers=("ClusterIssuer/le",))
    plan = decide(o, settings, NOW)
    assert ready(o, plan)["reason"] == "CertManagerNotEnabled"


@pytest.mark.parametrize(
    "ref",
    [
        {"name": "other", "kind": "ClusterIssuer"},  # another ClusterIssuer
        {"name": "le", "kind": "Issuer"},  # the allowed name, but the tenant's own Issuer
        {"name": "le", "kind": "ClusterIssuer", "group": "awspca.cert-manager.io"},
    ],
)
@pytest.mark.parametrize("dns", [VERIFIED, None])
def test_an_issuer_not_allowed_fails_and_requests_nothing(
    ref: dict[str, str], dns: domain.DomainCheck | None
) -> None:
    """Said at once (DNS verified or not); no Certificate, no custom host; an Event."""
    o = world(
        obj=_custom({"issuerRef": ref}), dns=dns, ownership=OWNED, certificate=CertificateOutcome()
    )
    plan = decide(o, SETTINGS, NOW)
    assert (plan.phase, ready(o, plan)["reason"]) == ("Failed", "IssuerNotAllowed")
    message = ready(o, plan)["message"]
    assert "ClusterIssuer/le" in message and "allowedIssuers" in message
    assert not [k for k in owned(plan) if k[0] == "Certificate"]
    # A Failed portal has no Ingress of its own (the page server answers its URL).
    assert "support.contoso.com" not in str(owned(plan).get(("Ingress", P), ""))
    warnings = [e.reason for e in plan.events if e.type == "Warning"]
    assert warnings == ["IssuerNotAllowed"]


def test_an_issuer_no_longer_allowed_prunes_its_certificate() -> None:
    issuer = {"issuerRef": {"name": "le", "kind": "ClusterIssuer"}}
    o = world(obj=_custom(issuer), dns=VERIFIED, ownership=OWNED, certificate=CertificateOutcome())
    plan = decide(o, SETTINGS, NOW)
    assert ("Certificate", P) in owned(plan)
    o2 = world(obj=_custom(issuer), dns=VERIFIED, ownership=OWNED, children=owned(plan))
    narrowed = Settings(**{**SETTINGS.__dict__, "allowed_issuers": ()})
    again = decide(o2, narrowed, NOW)
    assert ready(o2, again)["reason"] == "IssuerNotAllowed"
    assert "none is allowed" in ready(o2, again)["message"]
    assert ("Certificate", P) in again.deletes


@pytest.mark.parametrize(("permanent", "phase"), [(True, "Failed"), (False, "Configuring")])
def test_a_failed_reconcile_is_in_status(permanent: bool, phase: str) -> None:
    o = world()
    plan = failed(
        o, decide(o, SETTINGS, NOW), "422 Invalid: spec.selector is immutable", permanent, NOW
    )
    assert plan.phase == phase
    synced = next(c for c in plan.status["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"]) == ("False", "ReconcileError")
    assert "immutable" in synced["message"]
    assert ready(o, plan)["reason"] == "ReconcileError"
    assert [e.reason for e in plan.events] == ["ReconcileError"]
    assert plan.writes == () and plan.deletes == ()


def test_a_flapping_nxdomain_does_not_unverify_until_it_persists() -> None:
    missing = domain.DomainCheck(
        "support.contoso.com",
        "web.portals.example.com",
        domain.DomainState.MISCONFIGURED,
        domain.DomainReason.CNAME_MISSING,
        "no record",
    )
    status: dict[str, Any] = copy.deepcopy(WAS_VERIFIED)
    obj = _custom({"secretRef": {"name": "t"}})
    states = []
    for _ in range(3):
        o = world(obj=copy.deepcopy(obj), status=status, dns=missing)
        plan = decide(o, SETTINGS, NOW)
        status = plan.status
        states.append(next(c for c in status["conditions"] if c["type"] == "DomainVerified"))
    assert [c["status"] for c in states] == ["True", "True", "False"]
    assert "in a row" in states[0]["message"]
    # A good answer in between starts the count again.
    o = world(obj=copy.deepcopy(obj), status=status, dns=VERIFIED, ownership=OWNED)
    assert decide(o, SETTINGS, NOW).status["customDomain"].get("missing") is None


def test_spec_edit_keeps_the_site_up_and_is_ready_only_once_old_pods_left_the_service() -> None:
    o, _ = converge(world())
    obj = copy.deepcopy(dict(o.obj))
    obj["spec"]["displayName"] = "Web 2"
    obj["metadata"]["generation"] = 2
    edited = world(obj=obj, status=obj["status"], children=o.children, endpoints=o.endpoints)
    plan = decide(edited, SETTINGS, NOW)
    assert plan.phase == "Configuring"
    # The old pods serve through the roll: the portal's route stays, never the page.
    assert ("Service", P) not in owned(plan)
    assert ("Ingress", P) not in plan.deletes
    # Rolled out by the Deployment's count, but the Service still lists a stopping old pod.
    children = {**o.children, **owned(plan)}
    available(children)
    for kind, name in children:
        if kind == "Job":
            succeeded(children, name)
    leaving = (Endpoint(f"{P}-old-1", False, True), Endpoint(f"{P}-new-1", True, False))
    rolled = Observed(**{**edited.__dict__, "children": children, "endpoints": leaving})
    plan = decide(rolled, SETTINGS, NOW)
    runtime = next(c for c in plan.status["conditions"] if c["type"] == "RuntimeAvailable")
    assert (plan.phase, runtime["reason"]) == ("Configuring", "RollingOut")
    assert "1 old or unready pod(s) still listed" in runtime["message"]
    gone = Observed(**{**rolled.__dict__, "endpoints": leaving[1:]})
    plan = decide(gone, SETTINGS, NOW)
    assert plan.phase == "Ready", ready(gone, plan)


def test_a_new_portal_shows_the_page_until_ready_even_with_runtime_pods_up() -> None:
    plan = decide(world(), SETTINGS, NOW)
    children = owned(plan)
    available(children)  # the runtime is up, but provisioning has not finished
    o = world(status=plan.status, children=children, endpoints=endpoints(children))
    plan = decide(o, SETTINGS, NOW)
    assert plan.phase == "Configuring"
    assert ("Ingress", P) not in {**children, **owned(plan)}


def test_a_dual_stack_service_counts_each_pod_once() -> None:
    """Two EndpointSlices (IPv4 and IPv6) list the same pods: 1 pod is not 2 of 2."""
    twice = (Endpoint(f"{P}-5d8fb-x0", True, False),) * 2
    waiting = routed(twice, 2)
    assert waiting is not None and "1 of 2 pod(s)" in waiting.message
    assert routed(twice, 1) is None


# --- the portal's instance token -------------------------------------------------


def test_the_portal_secret_holds_a_minted_token_never_the_instances_keys() -> None:
    creds = SecretView(
        "crm-creds",
        "7",
        frozenset({"token", "ca.crt"}),
        {"token": base64.b64encode(b"s3cr3t").decode(), "ca.crt": "Q0E="},
    )
    plan = decide(world(credentials=creds), SETTINGS, NOW)
    secret = owned(plan)[("Secret", names.instance_secret_name(P))]
    # The CA and the session keys; the token comes from act (the instance's never).
    assert set(secret["data"]) == {"ca.crt", "keys"} and secret["data"]["ca.crt"] == "Q0E="
    assert plan.mint_token == SETTINGS.instance_token_ttl_seconds
    assert plan.revoke_tokens == ()


def test_a_held_token_is_kept_and_renewed_before_expiry() -> None:
    first = decide(world(), SETTINGS, NOW)
    expires = NOW + datetime.timedelta(seconds=SETTINGS.instance_token_ttl_seconds)
    children = minted(first, "t-1", expires)
    settled = decide(world(children=children), SETTINGS, NOW)
    assert ("Secret", names.instance_secret_name(P)) not in owned(settled)
    assert settled.mint_token == 0 and settled.revoke_tokens == ()
    # It comes back to renew with a third of the lifetime left.
    assert settled.requeue_after is not None
    assert settled.requeue_after <= SETTINGS.instance_token_ttl_seconds * 2 / 3
    later = NOW + datetime.timedelta(seconds=SETTINGS.instance_token_ttl_seconds * 0.7)
    renewal = decide(world(children=children), SETTINGS, later)
    # Renewed, not revoked: pods read the new token once the kubelet updates the file.
    assert renewal.mint_token and renewal.revoke_tokens == ()


def test_withdrawal_revokes_the_portals_token() -> None:
    first = decide(world(), SETTINGS, NOW)
    children = minted(first, "t-1", NOW + datetime.timedelta(days=1))
    instance = copy.deepcopy(INSTANCE)
    del instance["spec"]["allowedNamespaces"]
    plan = decide(world(children=children, instance=instance), SETTINGS, NOW)
    # Rewritten with the session keys alone (sessions outlive a lapse), the token revoked.
    secret = owned(plan)[("Secret", names.instance_secret_name(P))]
    assert set(secret["data"]) == {"keys"}
    assert token.TOKEN_ID not in secret["metadata"]["annotations"]
    assert plan.revoke_tokens == ("t-1",)
