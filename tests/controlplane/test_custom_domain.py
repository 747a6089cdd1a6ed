"""Custom domains end to end: a real DNS server on loopback, real .pfx files, the real API."""

from __future__ import annotations

import base64
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.support.certmanager import CertManager
from tests.support.certs import (
    custom,
    ingress_hosts,
    make_pfx,
    ownership_record,
    pfx_secret,
    tls_secret,
)
from tests.support.controlplane import BASE_DOMAIN, Cluster, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal, secret

PEM_BODY = re.compile(r"-----BEGIN [A-Z ]+-----(\\n|\s)*[A-Za-z0-9+/]{40}")


def test_custom_domain_with_pfx_to_ready_and_rotation(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS, operator: Any
) -> None:
    zone, host = f"{namespace}.test", f"www.{namespace}.test"
    target = f"site-{namespace}.{BASE_DOMAIN}"[:253]
    first_password = "first-pfx-password-7"
    data, fingerprint = make_pfx(host, first_password)
    cluster.apply(pfx_secret("site-pfx", namespace, data, first_password))
    dns.set_zone(zone, [])
    cluster.apply(
        portal(
            "site",
            namespace,
            instance,
            subdomain=f"site-{namespace}",
            type="Production",
            customDomain=custom(host),
        )
    )
    waiting = cluster.wait_phase(namespace, "site", "Configuring", "CNAMEMissing")
    message = cluster.condition(waiting, "DomainVerified")["message"]
    assert message.startswith(f"Please add a CNAME record for {host} pointing to {target}; ")
    assert f"add a TXT record _portico-challenge.{host} with the value" in message
    # No route of its own before Ready: the shared page server answers for its hosts.
    assert ingress_hosts(cluster, namespace, "site") == []
    assert cluster.get("secret", "site-tls", namespace) is None, "no certificate before DNS"

    # The records appear at the DNS provider: the portal goes Ready untouched.
    dns.set_zone(zone, [f"www CNAME {target}.", ownership_record(cluster, namespace, "site")])
    ready = cluster.wait_phase(namespace, "site", "Ready", timeout=120)
    assert ready["status"]["customDomainUrl"] == f"https://{host}"
    cert = ready["status"]["certificate"]
    assert cert["sha256Fingerprint"].replace(":", "").lower() == fingerprint
    assert cert["source"] == "pfxSecretRef" and cert["dnsNames"] == [host]
    assert host in ingress_hosts(cluster, namespace, "site")
    ing = cluster.get("ingress", "site", namespace) or {}
    assert {"hosts": [host], "secretName": "site-tls"} in ing["spec"]["tls"]
    tls = cluster.get("secret", "site-tls", namespace) or {}
    assert tls["type"] == "kubernetes.io/tls"
    crt = base64.b64decode(tls["data"]["tls.crt"])
    assert crt.count(b"BEGIN CERTIFICATE") == 2
    assert b"BEGIN PRIVATE KEY" in base64.b64decode(tls["data"]["tls.key"])

    # Rotation: a new .pfx in the same Secret is picked up within seconds.
    second_password = "second-pfx-password-9"
    new_data, new_fingerprint = make_pfx(host, second_password)
    cluster.apply(pfx_secret("site-pfx", namespace, new_data, second_password))
    wait_for(
        "the new certificate in status",
        lambda: (
            cluster.portal(namespace, "site")["status"]["certificate"]["sha256Fingerprint"]
            .replace(":", "")
            .lower()
            == new_fingerprint
        ),
        timeout=30,
    )
    assert cluster.get("secret", "site-tls", namespace) is not None

    # A broken replacement keeps the last good certificate in place.
    cluster.apply(pfx_secret("site-pfx", namespace, new_data, "not-the-password"))
    failed = cluster.wait_phase(namespace, "site", "Failed", "InvalidPfx")
    assert "password" in cluster.condition(failed, "CertificateReady")["message"]
    assert cluster.get("secret", "site-tls", namespace) is not None

    # Nothing secret leaked into logs, events or status.
    text = operator.log_text() + str(cluster.events(namespace, "site")) + str(failed["status"])
    for needle in (first_password, second_password, "BEGIN PRIVATE KEY"):
        assert needle not in text
    # A message may name the marker alone ("put the chain as -----BEGIN CERTIFICATE-----
    # blocks", another test's portal in the shared log): what must not appear is a body.
    assert not PEM_BODY.search(text), "a PEM body leaked"
    for body in (crt, base64.b64decode(tls["data"]["tls.key"])):
        for line in body.decode().splitlines()[1:3]:
            assert line not in text


def test_wrong_target_and_dns_outage(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    zone, host = f"{namespace}.test", f"app.{namespace}.test"
    target = f"app-{namespace}.{BASE_DOMAIN}"
    cluster.apply(secret("tls-pair", namespace, **{"tls.crt": "x", "tls.key": "y"}))
    dns.set_zone(zone, [f"app CNAME elsewhere.{zone}.", "elsewhere A 192.0.2.10"])

    def app(hostname: str) -> dict[str, Any]:
        return portal(
            "app",
            namespace,
            instance,
            subdomain=f"app-{namespace}",
            customDomain=custom(hostname, secretRef={"name": "tls-pair"}),
        )

    cluster.apply(app(host))
    wrong = cluster.wait_phase(namespace, "app", "Configuring", "CNAMEMismatch")
    message = cluster.condition(wrong, "DomainVerified")["message"]
    assert f"elsewhere.{zone}" in message and target in message
    dns.set_zone(zone, [f"app CNAME {target}.", ownership_record(cluster, namespace, "app")])
    verified = wait_for(
        "DomainVerified",
        lambda: (
            cluster.condition(cluster.portal(namespace, "app"), "DomainVerified").get("status")
            == "True"
        ),
    )
    assert verified
    # The server goes away: Unknown answers never un-verify the domain.
    dns.stop()
    try:
        cluster.plane.kubectl(
            "annotate",
            "portal",
            "app",
            "-n",
            namespace,
            "portico.dev/reconcile-requested-at=dns-down",
        )
        wait_for(
            "the re-check to run",
            lambda: (
                cluster.portal(namespace, "app")["status"].get("lastHandledReconcileAt")
                == "dns-down"
            ),
        )
        cond = cluster.condition(cluster.portal(namespace, "app"), "DomainVerified")
        assert cond["status"] == "True"
        # A new hostname while DNS is still down starts unverified: never the old verdict.
        moved = f"shop.{zone}"
        cluster.apply(app(moved))
        obj = cluster.wait_phase(namespace, "app", "Configuring", "DNSUnavailable")
        assert cluster.condition(obj, "DomainVerified")["status"] == "Unknown"
        assert obj["status"]["customDomain"]["hostname"] == moved
        assert "customDomainUrl" not in obj["status"]
        hosts = set(ingress_hosts(cluster, namespace, "app"))
        assert moved not in hosts and host not in hosts
    finally:
        dns.start()


def test_domain_claim_between_namespaces(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    zone, host = f"{namespace}.test", f"shop.{namespace}.test"
    dns.set_zone(zone, [f"shop CNAME shop-a-{namespace}.{BASE_DOMAIN}."])
    for ns, name in ((namespace, "shop-a"), (other_namespace, "shop-b")):
        data, _ = make_pfx(host, "pw")
        cluster.apply(pfx_secret("site-pfx", ns, data, "pw"))
        cluster.apply(
            portal(name, ns, instance, subdomain=f"{name}-{namespace}", customDomain=custom(host))
        )
        if name == "shop-a":
            cname = f"shop CNAME shop-a-{namespace}.{BASE_DOMAIN}."
            dns.set_zone(zone, [cname, ownership_record(cluster, ns, name)])
            cluster.wait_phase(ns, name, "Ready", timeout=120)
    taken = cluster.wait_phase(other_namespace, "shop-b", "Failed", "DomainTaken")
    assert f"{namespace}/shop-a" in cluster.condition(taken, "DomainVerified")["message"]
    assert host not in ingress_hosts(cluster, other_namespace, "shop-b")
    # The owner is deleted, and DNS even points at the other portal: a release is not a
    # gift, the host stays reserved for the owner's namespace (claimGraceSeconds) and the
    # waiting portal says until when; it gets no route and no certificate meanwhile.
    dns.set_zone(zone, [f"shop CNAME shop-b-{namespace}.{BASE_DOMAIN}."])
    cluster.plane.kubectl("delete", "portal", "shop-a", "-n", namespace)

    def reserved() -> dict[str, Any] | None:
        obj = cluster.portal(other_namespace, "shop-b")
        message = str(cluster.condition(obj, "DomainVerified").get("message", ""))
        return obj if "reserved for that namespace until" in message else None

    wait_for("the other portal to wait for the reservation", reserved)
    assert host not in ingress_hosts(cluster, other_namespace, "shop-b")


def test_existing_tls_secret_is_validated_and_bound(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    zone, host = f"{namespace}.test", f"docs.{namespace}.test"
    dns.set_zone(zone, [f"docs CNAME docs-{namespace}.{BASE_DOMAIN}."])
    cluster.apply(tls_secret("docs-tls-pair", namespace, host))
    cluster.apply(
        portal(
            "docs",
            namespace,
            instance,
            subdomain=f"docs-{namespace}",
            customDomain=custom(host, secretRef={"name": "docs-tls-pair"}),
        )
    )
    dns.set_zone(
        zone,
        [
            f"docs CNAME docs-{namespace}.{BASE_DOMAIN}.",
            ownership_record(cluster, namespace, "docs"),
        ],
    )
    ready = cluster.wait_phase(namespace, "docs", "Ready", timeout=120)
    assert ready["status"]["certificate"]["source"] == "secretRef"
    ing = cluster.get("ingress", "docs", namespace) or {}
    assert {"hosts": [host], "secretName": "docs-tls-pair"} in ing["spec"]["tls"]
    assert cluster.get("secret", "docs-tls", namespace) is None, "the user's Secret is bound as is"


def test_expiring_certificate_warns(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS, operator: Any
) -> None:
    zone, host = f"{namespace}.test", f"soon.{namespace}.test"
    dns.set_zone(zone, [f"soon CNAME soon-{namespace}.{BASE_DOMAIN}."])
    data, _ = make_pfx(host, "pw", days=10)
    cluster.apply(pfx_secret("site-pfx", namespace, data, "pw"))
    cluster.apply(
        portal(
            "soon", namespace, instance, subdomain=f"soon-{namespace}", customDomain=custom(host)
        )
    )
    dns.set_zone(
        zone,
        [
            f"soon CNAME soon-{namespace}.{BASE_DOMAIN}.",
            ownership_record(cluster, namespace, "soon"),
        ],
    )
    ready = cluster.wait_phase(namespace, "soon", "Ready", timeout=120)
    assert cluster.condition(ready, "CertificateReady")["reason"] == "CertificateExpiringSoon"
    warnings = [e for e in cluster.events(namespace, "soon") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["CertificateExpiringSoon"]
    gauge = next(
        line
        for line in operator.metrics().splitlines()
        if line.startswith("portico_certificate_expiry_seconds")
        and 'portal="soon"' in line
        and f'namespace="{namespace}"' in line
    )
    assert 8 * 86400 < float(gauge.split()[-1]) < 11 * 86400


def test_issuer_certificate_only_after_verification(
    cluster: Cluster,
    namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    cert_manager: CertManager,
) -> None:
    """The real cert-manager issues from the session's CA ClusterIssuer once DNS is verified."""
    zone, host = f"{namespace}.test", f"le.{namespace}.test"
    dns.set_zone(zone, [])
    cluster.apply(
        portal(
            "le",
            namespace,
            instance,
            subdomain=f"le-{namespace}",
            customDomain=custom(host, issuerRef=cert_manager.issuer),
        )
    )
    cluster.wait_phase(namespace, "le", "Configuring", "CNAMEMissing")
    assert cluster.get("certificate", "le", namespace) is None, "nothing is requested before DNS"
    dns.set_zone(
        zone,
        [f"le CNAME le-{namespace}.{BASE_DOMAIN}.", ownership_record(cluster, namespace, "le")],
    )
    cert = wait_for(
        "the Certificate request", lambda: cluster.get("certificate", "le", namespace), timeout=60
    )
    assert cert["spec"]["dnsNames"] == [host] and cert["spec"]["secretName"] == "le-tls"
    assert cert["spec"]["issuerRef"] == {**cert_manager.issuer, "group": "cert-manager.io"}
    ready = cluster.wait_phase(namespace, "le", "Ready", timeout=120)
    # cert-manager's own verdict, and its Secret signed by the session's CA.
    issued = cluster.get("certificate", "le", namespace) or {}
    assert {"type": "Ready", "status": "True"}.items() <= cluster.condition(issued, "Ready").items()
    secret = cluster.get("secret", "le-tls", namespace) or {}
    assert secret["metadata"]["annotations"]["cert-manager.io/certificate-name"] == "le"
    leaf = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    leaf.verify_directly_issued_by(cert_manager.ca)
    status = ready["status"]["certificate"]
    assert status["source"] == "issuerRef" and status["dnsNames"] == [host]
    assert status["issuer"] == cert_manager.ca.subject.rfc4514_string()
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
    assert status["sha256Fingerprint"].replace(":", "").lower() == fingerprint
    assert host in ingress_hosts(cluster, namespace, "le")
    ing = cluster.get("ingress", "le", namespace) or {}
    assert {"hosts": [host], "secretName": "le-tls"} in ing["spec"]["tls"]


def test_an_issuer_not_allowed_is_refused(
    cluster: Cluster,
    namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    cert_manager: CertManager,
) -> None:
    """A ClusterIssuer that exists and works, but the operator's settings do not list: the
    portal fails with IssuerNotAllowed and an Event, and cert-manager is never asked."""
    other = "tenant-picked-ca"
    cluster.apply(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": other},
            "spec": {"ca": {"secretName": cert_manager.issuer["name"]}},
        }
    )
    zone, host = f"{namespace}.test", f"pick.{namespace}.test"
    dns.set_zone(zone, [f"pick CNAME pick-{namespace}.{BASE_DOMAIN}."])
    ref = {"name": other, "kind": "ClusterIssuer"}
    cluster.apply(
        portal(
            "pick",
            namespace,
            instance,
            subdomain=f"pick-{namespace}",
            customDomain=custom(host, issuerRef=ref),
        )
    )
    failed = cluster.wait_phase(namespace, "pick", "Failed", "IssuerNotAllowed", timeout=60)
    message = cluster.condition(failed, "CertificateReady")["message"]
    assert f"ClusterIssuer/{other}" in message and "allowedIssuers" in message
    events = [e for e in cluster.events(namespace, "pick") if e["type"] == "Warning"]
    assert [e["reason"] for e in events] == ["IssuerNotAllowed"]
    assert cluster.items("certificates", namespace) == []
    assert cluster.items("certificaterequests", namespace) == []
    assert host not in ingress_hosts(cluster, namespace, "pick")
    cluster.plane.kubectl("delete", "clusterissuer", other)
