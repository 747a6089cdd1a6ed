"""A portal's custom domain: the host claim, DNS verification and the certificate (pure).

`observe` makes the DNS lookup when one is due and converts the certificate
(cached by the Secret's resourceVersion); this module only judges what it got.
The verdict is remembered in `status.customDomain` together with the host and
target it is about, so a changed hostname starts unverified. With the operator's
`domainOwnership: Required`, the host must also carry this portal's TXT record
(`_portico-challenge.<host>`, domain/ownership.py) before it is routed or certified.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from portico import domain
from portico.api.model import IssuerRef, Portal
from portico.certificates import CertificateVerdict
from portico.core import issuers, names
from portico.core.claims import Reservation
from portico.core.conditions import Condition, false, true
from portico.core.observed import (
    CertificateOutcome,
    SecretView,
    missing_message,
    unlabelled_message,
)
from portico.core.reasons import Failure
from portico.settings import Settings

# Lookups in a row that must find the record missing before a verified host is un-verified.
CONFIRM_MISSING = 3
# Converts (pfx, password, host) or (crt, key, host) into a verdict; the controller caches it.
Convert = Callable[[str, bytes, bytes | None, str], CertificateVerdict]


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
    # status.customDomain: the verdict and which host and target it is about.
    record: dict[str, Any] | None = None


def target(portal: Portal, settings: Settings) -> str:
    return f"{portal.subdomain}.{settings.base_domain}"


def _b64(data: Mapping[str, str], key: str) -> bytes | None:
    value = data.get(key)
    return base64.b64decode(value) if value is not None else None


def certificate(
    portal: Portal,
    secrets: Mapping[str, SecretView | None],
    issued: SecretView | None,
    convert: Convert,
) -> CertificateOutcome:
    """The certificate verdict, or a condition saying why there is nothing to judge yet."""
    cd = portal.custom_domain
    assert cd is not None
    host = cd.hostname
    if cd.pfx:
        secret = secrets.get(cd.pfx.name)
        if secret is None:
            return CertificateOutcome(
                waiting=false(
                    "CertificateReady",
                    Failure.SECRET_NOT_FOUND,
                    missing_message(
                        portal.namespace,
                        cd.pfx.name,
                        "the .pfx",
                        f"keys {cd.pfx.key} and {cd.pfx.password_key}",
                        portal.name,
                    ),
                )
            )
        if not secret.labelled:
            return CertificateOutcome(
                waiting=false(
                    "CertificateReady",
                    Failure.SECRET_NOT_LABELLED,
                    unlabelled_message(portal.namespace, cd.pfx.name, "the .pfx", portal.name),
                )
            )
        pfx = _b64(secret.data, cd.pfx.key)
        if pfx is None:
            return CertificateOutcome(
                waiting=false(
                    "CertificateReady",
                    Failure.SECRET_KEY_MISSING,
                    f"Secret {cd.pfx.name} has no key {cd.pfx.key} (the .pfx file)",
                )
            )
        password = _b64(secret.data, cd.pfx.password_key)
        return CertificateOutcome(verdict=convert("pfx", pfx, password, host))
    name = cd.tls_secret or names.tls_secret_name(portal.name)
    pair = secrets.get(cd.tls_secret) if cd.tls_secret else issued
    if pair is None:
        if cd.issuer:
            return CertificateOutcome(
                waiting=false(
                    "CertificateReady",
                    "Issuing",
                    f"waiting for {cd.issuer.kind} {cd.issuer.name} to issue the certificate",
                )
            )
        return CertificateOutcome(
            waiting=false(
                "CertificateReady",
                Failure.SECRET_NOT_FOUND,
                missing_message(
                    portal.namespace,
                    name,
                    "the TLS pair",
                    "type kubernetes.io/tls (keys tls.crt and tls.key)",
                    portal.name,
                ),
            )
        )
    if not pair.labelled:
        return CertificateOutcome(
            waiting=false(
                "CertificateReady",
                Failure.SECRET_NOT_LABELLED,
                unlabelled_message(portal.namespace, name, "the TLS pair", portal.name),
            )
        )
    crt, key = _b64(pair.data, "tls.crt"), _b64(pair.data, "tls.key")
    if crt is None or key is None:
        return CertificateOutcome(
            waiting=false(
                "CertificateReady",
                Failure.SECRET_KEY_MISSING,
                f"Secret {name} needs keys tls.crt and tls.key",
            )
        )
    return CertificateOutcome(verdict=convert("pair", crt, key, host))


def _issuer_ready(certificate: Mapping[str, Any] | None) -> Condition | None:
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


def _issuer_refusal(ref: IssuerRef, settings: Settings) -> Condition | None:
    """Why this operator will not ask REF for a certificate, or None."""
    if not settings.cert_manager:
        return false(
            "CertificateReady",
            Failure.CERT_MANAGER_NOT_ENABLED,
            "customDomain.tls.issuerRef needs the operator's cert-manager support (Helm value "
            "certManager.enabled); use pfxSecretRef or secretRef, or ask your platform team",
        )
    if not issuers.allowed(ref, settings.allowed_issuers):
        return false(
            "CertificateReady",
            Failure.ISSUER_NOT_ALLOWED,
            f"customDomain.tls.issuerRef names {issuers.label(ref)}, which this operator may "
            "not ask for certificates; use an allowed issuer "
            f"({', '.join(settings.allowed_issuers) or 'none is allowed'}), pfxSecretRef or "
            "secretRef, or ask your platform team to add it to allowedIssuers",
        )
    return None


def _verdict(fields: Mapping[str, Any], host: str, want: str) -> domain.DomainCheck | None:
    try:
        state = domain.DomainState(fields.get("state", ""))
        reason = domain.DomainReason(fields.get("reason", ""))
    except ValueError:
        return None
    return domain.DomainCheck(host, want, state, reason, fields.get("message", ""))


def remembered(record: Mapping[str, Any] | None, host: str, want: str) -> domain.DomainCheck | None:
    """The verdict status.customDomain holds, only if it is about this host and target."""
    if not record or (record.get("hostname"), record.get("target")) != (host, want):
        return None
    return _verdict(record, host, want)


def remembered_ownership(
    record: Mapping[str, Any] | None, host: str, value: str
) -> domain.DomainCheck | None:
    """The TXT verdict status.customDomain.ownership holds, only for this host and token."""
    own = (record or {}).get("ownership") if (record or {}).get("hostname") == host else None
    if not own or own.get("value") != value:
        return None
    return _verdict(own, host, value)


def expected_token(portal: Portal) -> str:
    """This portal's TXT value for its custom host ("" before the API server gave it a UID:
    `portico plan` works on files)."""
    cd = portal.custom_domain
    if cd is None or not portal.uid:
        return ""
    return domain.ownership.token(portal.uid, cd.hostname)


def _settle(
    before: domain.DomainCheck | None,
    fresh: domain.DomainCheck | None,
    previous: Mapping[str, Any] | None,
    placeholder: domain.DomainCheck,
    missing_reason: domain.DomainReason,
    now: datetime.datetime,
) -> tuple[domain.DomainCheck, dict[str, Any]]:
    """The verdict to publish from the remembered one and a fresh lookup (if any), and its
    status fields: state, reason, message, checkedAt, verifiedAt and the missing count."""
    check = (before or placeholder) if fresh is None else domain.merge_checks(before, fresh)
    # A verified host is un-verified by a missing record only once several lookups in a
    # row agree: one NXDOMAIN from a flapping zone or a lagging secondary is not proof.
    missing = int((previous or {}).get("missing", 0)) if before else 0
    if fresh is not None and before is not None and before.verified:
        if fresh.reason is missing_reason:
            missing += 1
            if missing < CONFIRM_MISSING:
                check = replace(before, warning=f"{fresh.message} ({missing} in a row)")
        else:
            missing = 0
    out = {
        "state": str(check.state),
        "reason": str(check.reason),
        "message": check.message,
        "checkedAt": names.iso(now) if fresh else (previous or {}).get("checkedAt", names.iso(now)),
    }
    if check.verified:
        kept = before is not None and before.verified
        out["verifiedAt"] = ((previous or {}).get("verifiedAt") if kept else None) or names.iso(now)
        if missing:
            out["missing"] = missing
    return check, out


def _dns(
    host: str,
    want: str,
    record: Mapping[str, Any] | None,
    fresh: domain.DomainCheck | None,
    now: datetime.datetime,
) -> tuple[domain.DomainCheck, dict[str, Any]]:
    before = remembered(record, host, want)
    placeholder = _not_looked_up(host, want, f"{host} has not been looked up yet")
    check, fields = _settle(
        before,
        fresh,
        record if before else None,
        placeholder,
        domain.DomainReason.CNAME_MISSING,
        now,
    )
    return check, {"hostname": host, "target": want, **fields}


def _not_looked_up(host: str, want: str, message: str) -> domain.DomainCheck:
    """The verdict before the first lookup of HOST: unknown, never a failure."""
    return domain.DomainCheck(
        host, want, domain.DomainState.UNKNOWN, domain.DomainReason.DNS_UNAVAILABLE, message
    )


def _ownership(
    host: str,
    value: str,
    record: Mapping[str, Any] | None,
    fresh: domain.DomainCheck | None,
    required: bool,
    now: datetime.datetime,
) -> tuple[domain.DomainCheck, dict[str, Any]]:
    """The TXT verdict and status.customDomain.ownership: the exact record to add."""
    before = remembered_ownership(record, host, value)
    placeholder = _not_looked_up(
        host,
        value,
        f"{domain.ownership.challenge_name(host)} has not been looked up yet; "
        f"{domain.ownership.add_message(host, value)}",
    )
    previous = (record or {}).get("ownership") if before else None
    check, fields = _settle(
        before, fresh, previous, placeholder, domain.DomainReason.OWNERSHIP_UNVERIFIED, now
    )
    return check, {
        "required": required,
        "name": domain.ownership.challenge_name(host),
        "type": "TXT",
        "value": value,
        **fields,
    }


def _observed_fields(
    host: str,
    want: str,
    value: str,
    record: Mapping[str, Any] | None,
    seen: domain.Observation | None,
) -> dict[str, Any]:
    """What the host resolves to now: chain, addresses and conflicts (from the last lookup
    of this host; kept as they were when no lookup was due)."""
    if seen is None or seen.failure is not None:
        same = (record or {}).get("hostname") == host
        return {
            k: record[k]
            for k in ("chain", "addresses", "conflicts")
            if same and record and k in record
        }
    # Bounded as the CRD bounds them: a hostile zone cannot grow the status without limit.
    out: dict[str, Any] = {"chain": list(seen.chain[:16]), "addresses": list(seen.resolved[:64])}
    if conflicts := domain.ownership.conflicts(seen, want, value or None):
        out["conflicts"] = [c[:1024] for c in conflicts[:16]]
    return out


def assess(
    portal: Portal,
    settings: Settings,
    status: Mapping[str, Any],
    host_owner: str,
    dns: domain.DomainCheck | None,
    cert: CertificateOutcome | None,
    issued_certificate: Mapping[str, Any] | None,
    now: datetime.datetime,
    reserved: Reservation | None = None,
    owner: domain.DomainCheck | None = None,
    seen: domain.Observation | None = None,
) -> Assessment:
    """DNS first (CNAME, and the ownership TXT when the operator requires it), then the
    certificate: nothing is requested, bound or routed for a host that is not proven."""
    cd = portal.custom_domain
    if cd is None:
        return Assessment()
    out = Assessment(tls_secret=cd.tls_secret or names.tls_secret_name(portal.name))
    if reserved is not None:
        out.conditions.append(
            false(
                "DomainVerified",
                Failure.DOMAIN_TAKEN,
                f"{cd.hostname} was the custom domain of a deleted portal in namespace "
                f"{reserved.namespace} and stays reserved for that namespace until "
                f"{reserved.until}; choose another host, or wait until then",
            )
        )
        return out
    if host_owner and host_owner != f"{portal.namespace}/{portal.name}":
        out.conditions.append(
            false(
                "DomainVerified",
                Failure.DOMAIN_TAKEN,
                f"{cd.hostname} is already the custom domain of portal {host_owner}; remove it "
                "there first, or choose another host",
            )
        )
        return out
    host, want = domain.normalize_name(cd.hostname), domain.normalize_name(target(portal, settings))
    record = status.get("customDomain")
    check, out.record = _dns(host, want, record, dns, now)
    value = expected_token(portal)
    required = settings.domain_ownership == "Required"
    proof: domain.DomainCheck | None = None
    if value:
        proof, out.record["ownership"] = _ownership(host, value, record, owner, required, now)
    else:
        proof = owner  # offline (`portico plan`): no UID yet; assumed, as the CNAME is
    out.record.update(_observed_fields(host, want, value, record, seen))
    out.conditions.append(_domain_condition(check, proof if required else None))
    proven = check.verified and (not required or (proof is not None and proof.verified))
    if proven:
        out.record["verifiedHostname"] = host
    out.dns_pending = (
        not proven or bool(check.warning) or bool(required and proof and proof.warning)
    )
    refusal = _issuer_refusal(cd.issuer, settings) if cd.issuer else None
    if refusal is not None:
        # Said at once, DNS or not: only the spec (or the platform team) can fix it.
        out.conditions.append(refusal)
        return out
    if not proven:
        return out  # no certificate is requested or bound before the domain is proven
    out.issue = cd.issuer is not None
    waiting, verdict = (cert.waiting, cert.verdict) if cert else (None, None)
    if cd.issuer and waiting is None:
        waiting = _issuer_ready(issued_certificate)
    if waiting is not None or verdict is None:
        out.conditions.append(
            waiting or false("CertificateReady", "Checking", "the certificate is being read")
        )
        return out
    if not verdict.ok:
        out.conditions.append(false("CertificateReady", verdict.reason, verdict.message))
        # A broken .pfx replacement leaves `<portal>-tls` as it was: keep serving that
        # last good certificate until it expires, so a bad upload does not take the host down.
        out.serve = bool(cd.pfx) and _last_good(status.get("certificate"), host, now)
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


def _domain_condition(check: domain.DomainCheck, proof: domain.DomainCheck | None) -> Condition:
    """DomainVerified: the CNAME's verdict, then (when required) the TXT record's."""

    def said(c: domain.DomainCheck) -> str:
        return c.message + (f" (last check inconclusive: {c.warning})" if c.warning else "")

    if not check.verified or proof is None:
        message = said(check)
        if proof is not None and proof.state is domain.DomainState.MISCONFIGURED:
            add = domain.ownership.add_message(check.host, proof.target)
            message += f"; {add[0].lower()}{add[1:]} as well"
        return Condition("DomainVerified", check.condition_status, check.reason, message)
    if not proof.verified:
        return Condition("DomainVerified", proof.condition_status, proof.reason, said(proof))
    return Condition(
        "DomainVerified",
        "True",
        check.reason,
        f"{said(check)}; {domain.ownership.challenge_name(check.host)} proves it is this "
        "portal's" + (f" (last check inconclusive: {proof.warning})" if proof.warning else ""),
    )


def _last_good(previous: Mapping[str, Any] | None, host: str, now: datetime.datetime) -> bool:
    """True when status.certificate is a .pfx certificate for HOST still valid at NOW."""
    if not previous or previous.get("source") != "pfxSecretRef":
        return False
    covered = any(
        name == host or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:])
        for name in (domain.normalize_name(n) for n in previous.get("dnsNames") or ())
    )
    try:
        return covered and names.parse_time(str(previous.get("notAfter", ""))) > now
    except ValueError:
        return False
