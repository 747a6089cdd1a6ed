"""The portal's NetworkPolicy (pure): who may reach its pods, and where they may go.

One policy per portal selects every pod of it (runtime, "Getting set up" page, Jobs)
by the portal label. Ingress: only from the ingress controller's pods (a namespace
selector and a pod selector from the operator's settings), on the runtime's port.
Egress: DNS (the cluster's resolver, from the settings), and the ports of what the
portal's own configuration names — its instance first, then its identity providers,
analytics sinks and the mail relay — towards the destinations the settings allow (a
NetworkPolicy cannot name a host: the default is any address on those ports only).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from portico.settings import Settings

RUNTIME_PORT = 8080  # docs/runtime-contract.md: the runtime and the pages serve here
DNS_PORT = 53
_DEFAULT_PORTS = {"https": 443, "http": 80}


def selector(terms: Iterable[str]) -> dict[str, Any]:
    """`key=value` settings terms → a label selector (no terms: everything)."""
    labels = dict(term.split("=", 1) for term in terms)
    return {"matchLabels": dict(sorted(labels.items()))} if labels else {}


def url_port(url: str) -> int | None:
    """The TCP port a URL is reached on, or None for no (or an unusable) URL."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        return parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None


def egress_ports(config: dict[str, Any]) -> list[int]:
    """The ports of every endpoint the runtime configuration (render.runtime_config) names."""
    urls = [config["instance"]["url"]]
    urls += [idp["issuer"] for idp in config["authentication"]["identityProviders"]]
    analytics = config.get("analytics") or {}
    urls += [
        (analytics.get(k) or {}).get(f, "")
        for k, f in (("customerInsights", "hubUri"), ("cloudEvents", "url"))
    ]
    ports = {port for port in map(url_port, urls) if port}
    if mail := config.get("mail"):
        ports.add(int(mail["port"]))
    return sorted(ports)


def peers(settings: Settings) -> list[dict[str, Any]]:
    """Where the portal's endpoints may be: address ranges, and in-cluster namespaces."""
    out: list[dict[str, Any]] = [
        {"ipBlock": {"cidr": cidr}} for cidr in settings.network_policy_egress_cidrs
    ]
    if settings.network_policy_egress_namespaces:
        out.append({"namespaceSelector": selector(settings.network_policy_egress_namespaces)})
    return out


def spec(
    portal_selector: dict[str, str], config: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    ingress_peer = {
        "namespaceSelector": selector(settings.network_policy_ingress_namespaces),
        "podSelector": selector(settings.network_policy_ingress_pods),
    }
    dns_peer = {
        "namespaceSelector": selector(settings.network_policy_dns_namespaces),
        "podSelector": selector(settings.network_policy_dns_pods),
    }
    egress: list[dict[str, Any]] = [
        {
            "to": [dns_peer],
            "ports": [
                {"protocol": "UDP", "port": DNS_PORT},
                {"protocol": "TCP", "port": DNS_PORT},
            ],
        }
    ]
    ports = egress_ports(config)
    if ports and (to := peers(settings)):
        egress.append({"to": to, "ports": [{"protocol": "TCP", "port": p} for p in ports]})
    return {
        "podSelector": {"matchLabels": portal_selector},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [ingress_peer], "ports": [{"protocol": "TCP", "port": RUNTIME_PORT}]}],
        "egress": egress,
    }
