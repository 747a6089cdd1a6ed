"""Only an entitled portal holds or contends for a name (observe, from the watch-fed store).

The attack: a tenant files a Portal early for a subdomain or custom host it cannot use
(no instance, a namespace the instance does not allow, an image it does not allow),
hoping to hold the name against the team it belongs to.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from portico.controller.operator import Operator
from portico.settings import Settings
from tests.support.events import portal

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


class StoreOnly:
    """Answers a Portal read from what the operator's store holds; nothing else exists."""

    def __init__(self) -> None:
        self.op: Operator | None = None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        assert self.op is not None
        if kind == "Portal":
            return self.op.store.portals.get((namespace or "", name))
        return None


def instance(allowed: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "url": "https://crm.example.net",
        "credentialsSecretRef": {"namespace": "portico-system", "name": "crm-creds"},
        "languages": ["en-US"],
        "administrators": ["jay@contoso.com"],
    }
    if allowed is not None:
        spec["allowedNamespaces"] = allowed
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "PortalInstance",
        "metadata": {"name": "crm", "resourceVersion": "1"},
        "spec": spec,
    }


def claimant(name: str, namespace: str, created: str, **spec: Any) -> dict[str, Any]:
    body = portal(name, subdomain="shop")
    body["metadata"].update(namespace=namespace, creationTimestamp=created, uid=f"uid-{name}")
    body["spec"].update(spec)
    return body


def world(squatter: dict[str, Any]) -> Operator:
    kube = StoreOnly()
    op = Operator.build(Settings(instance_credentials_namespaces=("portico-system",)), kube)  # type: ignore[arg-type]
    kube.op = op
    selector = {"from": "Selector", "selector": {"matchLabels": {"portals": "yes"}}}
    op.instance_event("ADDED", instance(selector))
    for ns, labels in (("team", {"portals": "yes"}), ("squat", {})):
        op.namespace_event("ADDED", {"metadata": {"name": ns, "labels": labels}})
    op.secret_event(
        "ADDED",
        {
            "metadata": {
                "name": "crm-creds",
                "namespace": "portico-system",
                "resourceVersion": "1",
            },
            "data": {"token": "c2VjcmV0"},
        },
    )
    op.portal_event("ADDED", squatter)
    op.portal_event("ADDED", claimant("shop", "team", "2026-11-30T10:00:00Z"))
    return op


SQUATTERS = {
    "namespace not allowed": claimant("early", "squat", "2026-11-01T00:00:00Z"),
    "no instance": claimant("early", "team", "2026-11-01T00:00:00Z", instanceRef={"name": "nope"}),
    "image not allowed": claimant(
        "early", "team", "2026-11-01T00:00:00Z", runtime={"image": "evil.example.com/x:1"}
    ),
}


@pytest.mark.parametrize("how", sorted(SQUATTERS))
def test_an_unentitled_older_claim_does_not_count(how: str) -> None:
    op = world(copy.deepcopy(SQUATTERS[how]))
    observed = op.observer.observe("team", "shop", NOW)
    assert observed is not None
    assert observed.subdomain_owner == "team/shop"


def test_an_entitled_older_claim_still_wins() -> None:
    op = world(claimant("early", "team", "2026-11-01T00:00:00Z"))
    observed = op.observer.observe("team", "shop", NOW)
    assert observed is not None
    assert observed.subdomain_owner == "team/early"


# --- a release is not a gift: the grace period -----------------------------------


def _grace_world() -> Operator:
    op = world(claimant("early", "team", "2026-11-01T00:00:00Z"))  # "early" holds "shop"
    # A contender from another namespace the instance allows, filed before the re-creation.
    op.namespace_event("MODIFIED", {"metadata": {"name": "squat", "labels": {"portals": "yes"}}})
    op.portal_event("ADDED", claimant("rival", "squat", "2026-11-15T00:00:00Z"))
    return op


def test_a_release_is_not_a_gift_and_a_recreated_portal_keeps_its_name() -> None:
    from portico.controller.operator import RESERVATIONS_KEY
    from portico.core import reservations
    from portico.core.decide import decide

    op = _grace_world()
    op.portal_event("DELETED", claimant("early", "team", "2026-11-01T00:00:00Z"))
    op.portal_event("DELETED", claimant("shop", "team", "2026-11-30T10:00:00Z"))
    assert RESERVATIONS_KEY in op.queue  # written to its ConfigMap by the queue
    kept = op.observer.reservations[("subdomain", "shop")]
    assert kept.namespace == "team"
    # The contender waits, and its status says until when.
    rival = op.observer.observe("squat", "rival", NOW)
    assert rival is not None and rival.subdomain_owner == ""
    plan = decide(rival, op.settings, NOW)
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "SubdomainTaken" and kept.until in ready["message"]
    assert plan.requeue_after is not None
    # GitOps re-creates the portal in the same namespace: it holds the name again, and
    # keeps it after the grace period too, though the contender's claim is older.
    op.portal_event("ADDED", claimant("early", "team", "2026-12-01T00:00:00Z"))
    for moment in (NOW, NOW + datetime.timedelta(days=30)):
        again = op.observer.observe("team", "early", moment)
        assert again is not None and again.subdomain_owner == "team/early"
        later = op.observer.observe("squat", "rival", moment)
        assert later is not None and later.subdomain_owner == "team/early"
    # It survives a restart: what is written is what is read back.
    written = reservations.manifest("portico-system", op.observer.reservations)
    assert reservations.parse(written) == op.observer.reservations


def test_after_the_grace_period_an_unclaimed_name_goes_to_the_contender() -> None:
    op = _grace_world()
    op.portal_event("DELETED", claimant("early", "team", "2026-11-01T00:00:00Z"))
    op.portal_event("DELETED", claimant("shop", "team", "2026-11-30T10:00:00Z"))
    until = op.observer.reservations[("subdomain", "shop")].until
    after = datetime.datetime.fromisoformat(until.replace("Z", "+00:00")) + datetime.timedelta(
        seconds=1
    )
    rival = op.observer.observe("squat", "rival", after)
    assert rival is not None and rival.subdomain_owner == "squat/rival"
    assert rival.subdomain_reserved is None


def test_an_unentitled_portal_leaves_no_reservation() -> None:
    op = world(claimant("early", "squat", "2026-11-01T00:00:00Z"))  # not allowed there
    op.portal_event("DELETED", claimant("early", "squat", "2026-11-01T00:00:00Z"))
    assert op.observer.reservations == {}
