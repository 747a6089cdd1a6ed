"""A portal's custom domain: DNS verification, the host claim, and the certificate.

The DNS lookup is the only I/O here (asynchronous, run on the calling worker
thread's own loop, so other portals never wait); certificates come from the
Secrets `observe` already read and are checked by the pure `certificates`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from portico import certificates, domain
from portico.api.model import Portal
from portico.core import claims
from portico.core.conditions import Condition, false, true
from portico.settings import Settings


@dataclass
class Assessment:
    conditions: list[Condition] = field(default_factory=list)
    # The custom host goes into the Ingress only once verified, claimed and certified.
    serve: bool = False
    tls_secret: str = ""
    # base64 tls.crt/tls.key for `<portal>-tls` (from a .pfx), None when not written now.
    tls_data: dict[str, str] | None = None
    # Ask cert-manager for a Certificate (issuerRef, once the domain is verified).
    issue: bool = False
    certificate_status: dict[str, Any] | None = None
    expires_in: float | None = None
    # DNS is still unsettled: re-check with backoff.
    dns_pending: bool = False


def tls_secret_name(portal: Portal) -> str:
    return f"{portal.name}-tls"


def resolver_settings(settings: Settings) -> domain.ResolverSettings:
    return domain.ResolverSettings(
        nameservers=settings.dns_nameservers,
        port=settings.dns_port,
        timeout=settings.dns_timeout,
        authoritative=settings.dns_authoritative,
    )


def check_dns(portal: Portal, settings: Settings, previous: dict[str, Any]) -> domain.DomainCheck:
    """Look the host up now (never from a cache); a verified domain survives an unknown answer."""
    assert portal.custom_domain is not None
    host = portal.custom_domain.hostname
    target = f"{portal.subdomain}.{settings.base_domain}"
    result = asyncio.run(domain.check_domain(host, target, resolver_settings(settings)))
    before = None
    if previous.get("status") == "True" and previous.get("reason") == "CNAMEVerified":
        before = domain.verified(host, target)
    return domain.merge_checks(before, result)


def _b64(data: dict[str, Any], key: str) -> bytes | None:
    value = data.get(key)
    return base64.b64decode(value) if value is not None else None


def _certificate(
    portal: Portal,
    secrets: dict[str, dict[str, Any] | None],
    issued: dict[str, Any] | None,
    now: datetime.datetime,
) -> tuple[certificates.CertificateVerdict | None, Condition | None]:
    """The certificate verdict, or a condition saying why there is nothing to judge yet."""
    cd = portal.custom_domain
    assert cd is not None
    host = cd.hostname
    if cd.pfx:
        secret = secrets.get(cd.pfx.name)
        if secret is None:
            return None, false(
                "CertificateReady",
                "SecretNotFound",
                f"Secret {cd.pfx.name} with the .pfx does not exist; create it with "
                f"keys {cd.pfx.key} and {cd.pfx.password_key}",
            )
        data = secret.get("data") or {}
        pfx = _b64(data, cd.pfx.key)
        if pfx is None:
            return None, false(
                "CertificateReady",
                "SecretKeyMissing",
                f"Secret {cd.pfx.name} has no key {cd.pfx.key} (the .pfx file)",
            )
        password = _b64(data, cd.pfx.password_key)
        return certificates.convert_pfx(pfx, password, hostname=host, now=now), None
    name = cd.tls_secret or tls_secret_name(portal)
    secret = secrets.get(cd.tls_secret) if cd.tls_secret else issued
    if secret is None:
        if cd.issuer:
            return None, false(
                "CertificateReady",
                "Issuing",
                f"waiting for {cd.issuer.kind} {cd.issuer.name} to issue the certificate",
            )
        return None, false(
            "CertificateReady",
            "SecretNotFound",
            f"TLS Secret {name} does not exist; create a kubernetes.io/tls Secret",
        )
    data = secret.get("data") or {}
    crt, key = _b64(data, "tls.crt"), _b64(data, "tls.key")
    if crt is None or key is None:
        return None, false(
            "CertificateReady", "SecretKeyMissing", f"Secret {name} needs keys tls.crt and tls.key"
        )
    return certificates.validate_tls_pair(crt, key, hostname=host, now=now), None


def _issuer_ready(certificate: dict[str, Any] | None) -> Condition | None:
    """None when cert-manager's Certificate is Ready, else why not."""
    for cond in ((certificate or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return None
            return false(
                "CertificateReady",
                cond.get("reason") or "Issuing",
                cond.get("message") or "cert-manager is issuing the certificate",
            )
    return false(
        "CertificateReady", "Issuing", "cert-manager has not reported on the certificate yet"
    )


def assess(
    portal: Portal,
    settings: Settings,
    status: dict[str, Any],
    secrets: dict[str, dict[str, Any] | None],
    issued_secret: dict[str, Any] | None,
    issued_certificate: dict[str, Any] | None,
    claimants: Iterable[claims.Claimant],
    now: datetime.datetime,
) -> Assessment:
    cd = portal.custom_domain
    if cd is None:
        return Assessment()
    out = Assessment(tls_secret=cd.tls_secret or tls_secret_name(portal))
    previous = {c.get("type"): c for c in status.get("conditions") or ()}
    owner = claims.owner(claimants, cd.hostname, "hostname")
    if owner and (owner.namespace, owner.name) != (portal.namespace, portal.name):
        out.conditions.append(
            false(
                "DomainVerified",
                "DomainTaken",
                f"{cd.hostname} is already the custom domain of portal {owner.ref}; remove it "
                "there first, or choose another host",
            )
        )
        return out
    check = check_dns(portal, settings, previous.get("DomainVerified", {}))
    message = check.message + (
        f" (last check inconclusive: {check.warning})" if check.warning else ""
    )
    out.conditions.append(
        Condition("DomainVerified", check.condition_status, check.reason, message)
    )
    out.dns_pending = not check.verified or bool(check.warning)
    if not check.verified:
        return out  # no certificate is requested or bound before the domain is proven
    if cd.issuer and not settings.cert_manager:
        out.conditions.append(
            false(
                "CertificateReady",
                "CertManagerNotEnabled",
                "customDomain.tls.issuerRef needs the operator's cert-manager support (Helm value "
                "certManager.enabled); use pfxSecretRef or secretRef, or ask your platform team",
            )
        )
        return out
    out.issue = cd.issuer is not None
    verdict, waiting = _certificate(portal, secrets, issued_secret, now)
    if cd.issuer and waiting is None:
        waiting = _issuer_ready(issued_certificate)
    if waiting is not None:
        out.conditions.append(waiting)
        return out
    assert verdict is not None
    if not verdict.ok:
        out.conditions.append(false("CertificateReady", verdict.reason, verdict.message))
        return out
    out.certificate_status = {"source": cd.tls_source, **verdict.summary.as_status()}
    out.expires_in = (verdict.summary.not_after - now).total_seconds()
    if cd.pfx:
        out.tls_data = {
            k: base64.b64encode(v).decode() for k, v in verdict.tls_secret_data().items()
        }
    if verdict.expiring_soon:
        out.conditions.append(
            true("CertificateReady", "CertificateExpiringSoon", verdict.expiry_message)
        )
    else:
        out.conditions.append(
            true("CertificateReady", "Valid", f"valid until {out.certificate_status['notAfter']}")
        )
    out.serve = True
    return out
