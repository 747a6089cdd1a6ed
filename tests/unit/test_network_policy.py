"""The portal's NetworkPolicy and the hardening of every pod the operator makes (no cluster)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from portico.core import names, network_policy
from portico.core.children import changes
from portico.core.decide import Plan, decide
from portico.core.observed import Observed
from portico.settings import Settings, SettingsError
from tests.support.worlds import INSTANCE, NOW, SETTINGS, P, converge, owned, world

ON = dataclasses.replace(
    SETTINGS,
    portal_network_policy=True,
    network_policy_ingress_namespaces=("kubernetes.io/metadata.name=traefik",),
    network_policy_ingress_pods=("app.kubernetes.io/name=traefik",),
)
POLICY = ("NetworkPolicy", names.network_policy_name(P))


def test_one_policy_selects_every_pod_of_the_portal() -> None:
    plan = decide(world(), ON, NOW)
    policy = owned(plan)[POLICY]
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert policy["metadata"]["labels"][names.PORTAL_LABEL] == P
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {names.PORTAL_LABEL: P}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    # Every pod the plan makes carries the label the policy selects.
    pods = [
        m["spec"]["template"]["metadata"]["labels"]
        for m in owned(plan).values()
        if m["kind"] in ("Deployment", "Job")
    ]
    assert len(pods) >= 2  # runtime, provisioning Job (the page server is shared)
    assert all(labels[names.PORTAL_LABEL] == P for labels in pods)


def test_ingress_only_from_the_ingress_controller_on_the_runtime_port() -> None:
    spec = owned(decide(world(), ON, NOW))[POLICY]["spec"]
    assert spec["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "traefik"}
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]


def test_egress_only_to_dns_and_the_ports_of_the_instance_and_the_configured_endpoints() -> None:
    instance = copy.deepcopy(INSTANCE)
    instance["spec"]["url"] = "http://crm.crm-system.svc:8090"
    instance["spec"]["insecure"] = True
    obj = world().obj
    obj["spec"]["authentication"] = {
        "identityProviders": [
            {
                "name": "ad",
                "issuer": "https://login.example.com:8443/v2.0",
                "clientId": "c",
                "clientSecretRef": {"name": "oidc", "key": "s"},
            }
        ]
    }
    settings = dataclasses.replace(
        ON,
        network_policy_egress_cidrs=("203.0.113.0/24",),
        network_policy_egress_namespaces=("portico.dev/instances=true",),
    )
    spec = owned(decide(world(obj=obj, instance=instance), settings, NOW))[POLICY]["spec"]
    dns, endpoints_rule = spec["egress"]
    assert dns == {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    assert endpoints_rule == {
        "to": [
            {"ipBlock": {"cidr": "203.0.113.0/24"}},
            {"namespaceSelector": {"matchLabels": {"portico.dev/instances": "true"}}},
        ],
        "ports": [{"protocol": "TCP", "port": 8090}, {"protocol": "TCP", "port": 8443}],
    }


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("https://crm.example.net", 443),
        ("http://crm.example.net", 80),
        ("https://crm.example.net:8443/api", 8443),
        ("", None),
        ("https://crm.example.net:99999", None),
    ],
)
def test_url_port(url: str, port: int | None) -> None:
    assert network_policy.url_port(url) == port


def test_off_means_no_policy_and_no_watch() -> None:
    from portico.controller.handlers import watched

    assert POLICY not in owned(decide(world(), SETTINGS, NOW))
    assert "NetworkPolicy" not in watched(SETTINGS)
    assert "NetworkPolicy" in watched(ON)


def test_unchanged_portal_with_a_policy_costs_no_write() -> None:
    o, plan = converge(world(), ON, rounds=4)
    assert plan.phase == "Ready"
    assert POLICY in o.children
    assert plan.writes == () and plan.deletes == ()
    # The API server's defaults (none for what Portico sets) and a hand edit.
    edited = {k: copy.deepcopy(dict(v)) for k, v in o.children.items()}
    edited[POLICY]["spec"]["ingress"] = []
    again = decide(Observed(**{**o.__dict__, "children": edited}), ON, NOW)
    assert [w.key for w in again.writes] == [POLICY]


def test_a_withdrawn_portal_keeps_its_policy_and_an_unentitled_one_loses_it() -> None:
    o, _ = converge(world(), ON, rounds=4)
    # Withdrawn but still entitled to its URL: the page keeps being served, behind the policy.
    revoked = decide(Observed(**{**o.__dict__, "credentials": None}), ON, NOW)
    assert ("Deployment", P) in revoked.deletes
    assert POLICY not in revoked.deletes and POLICY not in {w.key for w in revoked.writes}
    # Not entitled at all: no routing, and nothing left to guard.
    gone = decide(Observed(**{**o.__dict__, "instance": None}), ON, NOW)
    assert POLICY in gone.deletes


def test_settings_need_the_ingress_controller_namespace_when_on() -> None:
    with pytest.raises(SettingsError, match="INGRESS_NAMESPACES"):
        Settings.from_env({"PORTICO_PORTAL_NETWORK_POLICY": "true"})
    with pytest.raises(SettingsError, match="key=value"):
        Settings.from_env({"PORTICO_NETWORK_POLICY_DNS_PODS": "kube-dns"})
    parsed = Settings.from_env(
        {
            "PORTICO_PORTAL_NETWORK_POLICY": "true",
            "PORTICO_NETWORK_POLICY_INGRESS_NAMESPACES": "a=b, c=d",
        }
    )
    assert network_policy.selector(parsed.network_policy_ingress_namespaces) == {
        "matchLabels": {"a": "b", "c": "d"}
    }


def _pods(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
        for m in owned(plan).values()
        if m["kind"] in ("Deployment", "Job")
    ]


def test_every_pod_has_no_service_links_and_a_bounded_tmp() -> None:
    pods = _pods(decide(world(), SETTINGS, NOW))
    assert {name.split("/")[0] for name, _ in pods} == {"Deployment", "Job"}
    for name, spec in pods:
        assert spec["enableServiceLinks"] is False, name
        for volume in spec["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), (name, volume)


def test_jobs_are_collected_after_they_finish() -> None:
    plan = decide(world(), dataclasses.replace(SETTINGS, job_ttl_seconds=600), NOW)
    jobs = [m for m in owned(plan).values() if m["kind"] == "Job"]
    assert jobs and all(j["spec"]["ttlSecondsAfterFinished"] == 600 for j in jobs)


def test_an_existing_job_is_never_applied_again() -> None:
    """Its pod template is immutable: an apply of a changed one would be refused (422)."""
    job = next(m for m in owned(decide(world(), SETTINGS, NOW)).values() if m["kind"] == "Job")
    key = ("Job", job["metadata"]["name"])
    older = copy.deepcopy(job)
    older["spec"]["template"]["spec"].pop("enableServiceLinks")  # made by an older operator
    diff = changes([job], {key: older}, frozenset())
    assert diff.writes == () and diff.skipped == (key,)
    assert changes([job], {}, frozenset()).writes[0].create
