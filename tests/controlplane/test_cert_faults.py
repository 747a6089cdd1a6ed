"""A .pfx Secret replaced with garbage while served: the last good certificate stays."""

from __future__ import annotations

import os

from tests.support.certs import make_pfx, ownership_record, pfx_secret
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal


def test_garbage_pfx_keeps_the_last_good_certificate(
    cluster: Cluster, operator: Operator, namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    zone = f"cf{namespace[-6:]}.test"
    host, subdomain = f"www.{zone}", f"cf-{namespace}"[:63].rstrip("-")
    password = "cf-pfx-passw0rd"
    data, fingerprint = make_pfx(host, password)
    dns.set_zone(zone, [f"www CNAME {subdomain}.{BASE_DOMAIN}."])
    cluster.apply(pfx_secret("site-pfx", namespace, data, password))
    custom = {"hostname": host, "tls": {"pfxSecretRef": {"name": "site-pfx"}}}
    cluster.apply(portal("cf", namespace, instance, subdomain=subdomain, customDomain=custom))
    cname = f"www CNAME {subdomain}.{BASE_DOMAIN}."
    dns.set_zone(zone, [cname, ownership_record(cluster, namespace, "cf")])
    ready = cluster.wait_phase(namespace, "cf", "Ready", timeout=120)
    assert ready["status"]["certificate"]["sha256Fingerprint"].replace(":", "").lower() == (
        fingerprint
    )
    good = cluster.get("secret", "cf-tls", namespace)
    assert good is not None

    cluster.apply(pfx_secret("site-pfx", namespace, os.urandom(1200), password))
    failed = cluster.wait_phase(namespace, "cf", "Failed", "InvalidPfx")
    assert (
        "export the certificate again" in cluster.condition(failed, "CertificateReady")["message"]
    )
    kept = cluster.get("secret", "cf-tls", namespace)
    assert kept is not None and kept["data"] == good["data"], "the served certificate changed"
    ingress = cluster.get("ingress", "cf", namespace) or {}
    assert {"hosts": [host], "secretName": "cf-tls"} in ingress["spec"]["tls"]
    assert password not in operator.log_text()
