"""spec.state and portico.dev/restart-site through decide() (pure): what each keeps, what
it removes, when its status says so, and that a settled portal costs no write."""

from __future__ import annotations

import base64
import copy
import datetime
from typing import Any

from portico.api import model, validation
from portico.core import entitlement, names, site, token
from portico.core.children import with_hash
from portico.core.decide import Plan, decide
from portico.core.observed import Observed
from portico_runtime.pages.sites import site as page_site
from tests.support.worlds import (
    INSTANCE,
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

TOKEN_KEY = ("Secret", names.instance_secret_name(P))


def _apply(o: Observed, plan: Plan) -> Observed:
    """The world after act and the controllers, the Secret holding a token when act minted."""
    o = applied(o, plan)
    if not (plan.mint_token and TOKEN_KEY in o.children):
        return o
    secret: dict[str, Any] = copy.deepcopy(dict(o.children[TOKEN_KEY]))
    annotations = secret["metadata"]["annotations"]
    annotations.pop(names.APPLIED_HASH)
    expires = names.iso(NOW + datetime.timedelta(days=1))
    annotations.update({token.TOKEN_ID: "t-1", token.TOKEN_EXPIRES: expires})
    secret["data"] = {**secret["data"], "token": base64.b64encode(b"portal").decode()}
    return Observed(**{**o.__dict__, "children": {**o.children, TOKEN_KEY: with_hash(secret)}})


def _converge(o: Observed) -> tuple[Observed, Plan]:
    return converge(o, apply=_apply)


def _ready_portal() -> Observed:
    o, plan = _converge(world())
    assert plan.phase == "Ready" and not plan.writes
    return _apply(o, plan)


def _condition(plan: Plan, type_: str) -> dict[str, Any]:
    return next(c for c in plan.status["conditions"] if c["type"] == type_)


def test_stopped_scales_to_zero_removes_the_route_and_keeps_the_rest() -> None:
    o = edited(_ready_portal(), state="Stopped")
    plan = decide(o, SETTINGS, NOW)
    assert plan.phase == "Stopped"
    assert owned(plan)[("Deployment", P)]["spec"]["replicas"] == 0
    # No route of its own: the page server answers its URL with the stopped page.
    assert plan.deletes == (("Ingress", P),)
    assert TOKEN_KEY in o.children and plan.revoke_tokens == ()
    assert (
        _condition(plan, "Ready")["reason"],
        _condition(plan, "RuntimeAvailable")["reason"],
    ) == (
        "Stopped",
        "Stopped",
    )
    assert [e.reason for e in plan.events] == ["Stopped"]
    settled, again = _converge(o)
    assert again.phase == "Stopped" and again.writes == () and again.deletes == ()
    assert again.status == settled.status  # no status patch at rest


def test_running_again_after_stopped_is_ready_with_its_route() -> None:
    stopped, _ = _converge(edited(_ready_portal(), state="Stopped"))
    running = edited(stopped, state="Running")
    plan = decide(running, SETTINGS, NOW)
    assert plan.phase == "Configuring"
    assert owned(plan)[("Deployment", P)]["spec"]["replicas"] == 1
    o, plan = _converge(running)
    assert plan.phase == "Ready" and ("Ingress", P) in o.children


def test_deprovisioned_releases_the_host_and_keeps_configuration_and_certificate() -> None:
    ready = _ready_portal()
    tls = {"metadata": {"name": names.tls_secret_name(P), "uid": "t"}}
    ready = Observed(
        **{
            **ready.__dict__,
            "children": {**ready.children, ("Secret", tls["metadata"]["name"]): tls},
        }
    )
    o = edited(ready, state="Deprovisioned")
    plan = decide(o, SETTINGS, NOW)
    assert plan.phase == "Deprovisioned"
    gone = set(plan.deletes)
    assert {("Deployment", P), ("Service", P), ("Ingress", P), TOKEN_KEY} <= gone
    assert ("Job", names.provision_job_name(P, 1)) in gone
    assert ("ConfigMap", names.config_name(P)) not in gone
    assert ("Secret", names.tls_secret_name(P)) not in gone
    assert plan.revoke_tokens == ("t-1",)  # the portal-scoped token is withdrawn
    assert plan.status["releasedAt"] == names.iso(NOW)
    assert plan.status["provisioning"] == o.status["provisioning"]  # history stays
    assert [e.reason for e in plan.events] == ["Deprovisioned"]
    settled, again = _converge(o)
    assert again.writes == () and again.deletes == () and again.status == settled.status
    assert site.claim_since(settled.obj) == site.REACTIVATING


def test_a_deprovisioned_portal_claims_no_name() -> None:
    portal = model.parse_portal(validation.admit("Portal", portal_obj(state="Deprovisioned"))[0])
    instance = model.parse_instance(validation.admit("PortalInstance", copy.deepcopy(INSTANCE))[0])
    assert not entitlement.may_claim(portal, instance, {}, SETTINGS)
    running = model.parse_portal(validation.admit("Portal", portal_obj())[0])
    assert entitlement.may_claim(running, instance, {}, SETTINGS)


def test_reactivation_takes_the_free_subdomain_back_and_counts_its_claim_from_then() -> None:
    released, _ = _converge(edited(_ready_portal(), state="Deprovisioned"))
    later = NOW + datetime.timedelta(hours=1)
    back = edited(released, state="Running")
    plan = decide(back, SETTINGS, later)
    assert "releasedAt" not in plan.status
    assert plan.status["reclaimedAt"] == names.iso(later)
    assert site.claim_since({**back.obj, "status": plan.status}) == names.iso(later)
    assert ("Deployment", P) in owned(plan) and TOKEN_KEY in owned(plan)


def test_reactivation_with_the_subdomain_taken_meanwhile_says_so_and_how_to_fix_it() -> None:
    released, _ = _converge(edited(_ready_portal(), state="Deprovisioned"))
    back = edited(released, state="Running")
    taken = Observed(**{**back.__dict__, "subdomain_owner": "other/newer"})
    plan = decide(taken, SETTINGS, NOW)
    ready = _condition(plan, "Ready")
    assert (plan.phase, ready["reason"]) == ("Failed", "SubdomainTaken")
    assert "other/newer" in ready["message"] and "Deprovisioned" in ready["message"]
    assert plan.status["releasedAt"] == released.status["releasedAt"]  # still waiting
    assert not any(k == ("Deployment", P) for k in owned(plan))


def test_restart_site_rolls_the_pods_keeps_the_route_and_is_echoed_once_they_serve() -> None:
    ready = _ready_portal()
    o = edited(ready, annotations={names.RESTART_SITE: "r1"})
    plan = decide(o, SETTINGS, NOW)
    pod = owned(plan)[("Deployment", P)]["spec"]["template"]["metadata"]
    assert pod["annotations"][names.RESTART_SITE] == "r1"
    assert plan.phase == "Configuring" and ("Ingress", P) not in plan.deletes
    assert "lastHandledSiteRestart" not in plan.status
    assert not any(k[0] == "Job" for k in owned(plan))  # not a provisioning attempt
    settled, again = _converge(o)
    assert again.phase == "Ready" and again.status["lastHandledSiteRestart"] == "r1"
    assert again.writes == () and again.status == settled.status


def test_the_page_server_shows_a_stopped_site_and_forgets_a_released_host() -> None:
    status = {"phase": "Stopped", "url": "https://web.portals.example.com"}
    stopped = page_site({**portal_obj(), "status": status})
    assert stopped is not None and stopped.category == "stopped"
    assert stopped.hosts == ("web.portals.example.com",)
    released = page_site({**portal_obj(), "status": {**status, "phase": "Deprovisioned"}})
    assert released is not None and released.hosts == ()
