"""The claim index: the oldest claim wins, a release wakes who waited, lookups need no scan."""

from __future__ import annotations

import copy
from typing import Any

from portico.api import model, validation
from portico.controller.index import Index

BASE: dict[str, Any] = {
    "apiVersion": "portico.dev/v1alpha1",
    "kind": "Portal",
    "spec": {
        "displayName": "P",
        "subdomain": "shared",
        "instanceRef": {"name": "crm"},
        "language": "en-US",
        "administrator": "jay@contoso.com",
        "audience": "Customer",
        "template": "Community",
    },
}


def portal(namespace: str, name: str, **spec: Any) -> model.Portal:
    raw = copy.deepcopy(BASE)
    raw["metadata"] = {"name": name, "namespace": namespace}
    raw["spec"].update(spec)
    return model.parse_portal(validation.admit("Portal", raw)[0])


def test_oldest_claim_wins_and_release_wakes_the_waiting() -> None:
    index = Index()
    index.put(portal("b", "newer"), "2026-11-30T10:00:00Z")
    index.put(portal("a", "older"), "2026-11-30T09:00:00Z")
    owner = index.subdomain_owner("shared")
    assert owner is not None and owner.ref == "a/older"
    entry = index.remove(("a", "older"))
    assert entry is not None
    assert index.contenders(entry) == {("b", "newer")}
    owner = index.subdomain_owner("shared")
    assert owner is not None and owner.ref == "b/newer"


def test_changing_a_host_moves_the_claim() -> None:
    index = Index()
    tls = {"secretRef": {"name": "t"}}
    index.put(portal("a", "p", customDomain={"hostname": "x.example.com", "tls": tls}), "t1")
    index.put(portal("a", "p", customDomain={"hostname": "y.example.com", "tls": tls}), "t1")
    assert index.host_owner("x.example.com") is None
    assert index.hosts.keys() == {"y.example.com"}
    assert index.wants_data("a", "t") and not index.wants_data("a", "other")


def test_removal_leaves_no_empty_sets() -> None:
    index = Index()
    index.put(portal("a", "p"), "t1")
    index.put_instance("crm", ("portico-system", "creds"))
    index.remove(("a", "p"))
    assert not index.subdomains and not index.linked and not index.secret_users
    assert index.wants_data("portico-system", "creds")
