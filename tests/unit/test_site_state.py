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
    available,
    endpoints,
    owned,
    portal_obj,
    succeeded,
    world,
)

TOKEN_KEY = ("Secret", names.instance_secret_name(P))


def _apply(o: Observed, plan: Plan) -> Observed:
    """The world after act and the controllers: writes applied, Deployment rolled to its
    replicas, Jobs done, the Secret holding a minted token."""
    children = {**{k: copy.deepcopy(dict(v)) for k, v in o.children.items()}, **owned(plan)}
    for key in plan.deletes:
        children.pop(key, None)
    if ("Deployment", P) in children:
        available(children, int(children[("Deployment", P)]["spec"]["replicas"]))
    for kind, name in children:
        if kind == "Job":
            succeeded(children, name)
    if plan.mint_token and TOKEN_KEY in children:
        secret = copy.deepcopy(children[TOKEN_KEY])
        annotations = secret["metadata"]["annotations"]
        annotations.pop(names.APPLIED_HASH)
        expires = names.iso(NOW + datetime.timedelta(days=1))
        annotations.update({token.TOKEN_ID: "t-1", token.TOKEN_EXPIRES: expires})
        secret["data"] = {**secret["data"], "token": base64.b64encode(b"portal").decode()}
        children[TOKEN_KEY] = with_hash(secret)
    obj = copy.deepcopy(dict(o.obj))
    obj["status"] = plan.status
    return Observed(
        **{**o.__dict__, "obj": obj, "children": children, "endpoints": endpoints(children)}
    )


def _converge(o: Observed, rounds: int = 5) -> tuple[Observed, Plan]:
    plan = decide(o, SETTINGS, NOW)
    for _ in range(rounds):
        o = _apply(o, plan)
        plan = decide(o, SETTINGS, NOW)
    return o, plan


def _edit(o: Observed, **overrides: Any) -> Observed:
    """O with spec fields or annotations changed (a new generation for a spec edit)."""
    obj = copy.deepcopy(dict(o.obj))
    annotations = overrides.pop("annotations", None)
    if annotations is not None:
        obj["metadata"].setdefault("annotations", {}).update(annotations)
    if overrides:
        obj["spec"].update(overrides)
        obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
    defaulted, problems = validation.admit("Portal", copy.deepcopy(obj))
    assert problems == []
    return Observed(**{**o.__dict__, "obj": obj, "portal": model.parse_portal(defaulted)})


def _ready_portal() -> Observed:
    o, plan = _converge(world())
    assert plan.phase == "Ready" and not plan.writes
    return _apply(o, plan)


def _condition(plan: Plan, type_: str) -> dict[str, Any]:
    return next(c for c in plan.status["conditions"] if c["type"] == type_)


def test_stopped_scales_to_zero_removes_the_route_and_keeps_the_rest() -> None:
    o = _edit(_ready_portal(), state="Stopped")
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
    stopped, _ = _converge(_edit(_ready_portal(), state="Stopped"))
    running = _edit(stopped, state="Running")
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
    o = _edit(ready, state="Deprovisioned")
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
    released, _ = _converge(_edit(_ready_portal(), state="Deprovisioned"))
    later = NOW + datetime.timedelta(hours=1)
    back = _edit(released, state="Running")
    plan = decide(back, SETTINGS, later)
    assert "releasedAt" not in plan.status
    assert plan.status["reclaimedAt"] == names.iso(later)
    assert site.claim_since({**back.obj, "status": plan.status}) == names.iso(later)
    assert ("Deployment", P) in owned(plan) and TOKEN_KEY in owned(plan)


def test_reactivation_with_the_subdomain_taken_meanwhile_says_so_and_how_to_fix_it() -> None:
    released, _ = _converge(_edit(_ready_portal(), state="Deprovisioned"))
    back = _edit(released, state="Running")
    taken = Observed(**{**back.__dict__, "subdomain_owner": "other/newer"})
    plan = decide(taken, SETTINGS, NOW)
    ready = _condition(plan, "Ready")
    assert (plan.phase, ready["reason"]) == ("Failed", "SubdomainTaken")
    assert "other/newer" in ready["message"] and "Deprovisioned" in ready["message"]
    assert plan.status["releasedAt"] == released.status["releasedAt"]  # still waiting
    assert not any(k == ("Deployment", P) for k in owned(plan))


def test_restart_site_rolls_the_pods_keeps_the_route_and_is_echoed_once_they_serve() -> None:
    ready = _ready_portal()
    o = _edit(ready, annotations={names.RESTART_SITE: "r1"})
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
