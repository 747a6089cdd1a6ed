"""Policy checks on parsed certificates; each returns the problems it finds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from portico.certificates.result import CertReason, Problem

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def describe(cert: x509.Certificate, leaf: x509.Certificate) -> str:
    """Sentence subject naming the certificate a problem is about."""
    if cert is leaf:
        return "The certificate"
    return f"The intermediate certificate '{cert.subject.rfc4514_string()}'"


def signature_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return getattr(oid, "_name", None) or oid.dotted_string


def public_key_name(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__.removeprefix("_").replace("PublicKey", "")


def same_public_key(cert: x509.Certificate, public_key: object) -> bool:
    def spki(key: object) -> bytes | None:
        try:
            return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]
        except (AttributeError, ValueError, TypeError):
            return None

    mine = spki(cert.public_key())
    return mine is not None and mine == spki(public_key)


def served(chain: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The leaf and intermediates: clients judge a root by their own trust store."""
    return [c for i, c in enumerate(chain) if i == 0 or c.issuer != c.subject]


def weak_signatures(chain: Sequence[x509.Certificate]) -> list[Problem]:
    """SHA-1, MD5 (or anything older) on the leaf or an intermediate."""
    leaf, problems = chain[0], []
    for cert in served(chain):
        try:
            weak = isinstance(cert.signature_hash_algorithm, hashes.SHA1 | hashes.MD5)
        except UnsupportedAlgorithm:
            weak = True  # MD2, MD4 and friends
        if weak:
            problems.append(
                Problem(
                    CertReason.WEAK_SIGNATURE,
                    f"{describe(cert, leaf)} is signed with "
                    f"{signature_name(cert)}, which browsers reject: use a SHA-2 certificate "
                    "(for example SHA-256) and its SHA-2 intermediates from your CA",
                )
            )
    return problems


def weak_keys(chain: Sequence[x509.Certificate]) -> list[Problem]:
    leaf, problems = chain[0], []
    for cert in served(chain):
        key = cert.public_key()
        minimum = MIN_EC_BITS if isinstance(key, ec.EllipticCurvePublicKey) else MIN_RSA_BITS
        size = getattr(key, "key_size", None)
        if isinstance(size, int) and size < minimum:
            problems.append(
                Problem(
                    CertReason.WEAK_KEY,
                    f"{describe(cert, leaf)} has a {size}-bit "
                    f"{public_key_name(cert).split()[0]} key; use a key of at least "
                    f"{minimum} bits",
                )
            )
    return problems


def missing_server_auth(leaf: x509.Certificate) -> list[Problem]:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        found = "it has no extended key usage extension"
    else:
        if ExtendedKeyUsageOID.SERVER_AUTH in usages:
            return []
        names = ", ".join(getattr(u, "_name", None) or u.dotted_string for u in usages)
        found = f"its extended key usage is only {names}"
    return [
        Problem(
            CertReason.MISSING_SERVER_AUTH,
            f"The certificate is not meant for web servers: {found}. Request a certificate "
            "with the serverAuth (TLS Web Server Authentication) extended key usage",
        )
    ]


def validity(chain: Sequence[x509.Certificate], now: datetime) -> list[Problem]:
    leaf, problems = chain[0], []
    for cert in served(chain):
        what = describe(cert, leaf)
        if now > cert.not_valid_after_utc:
            problems.append(
                Problem(
                    CertReason.CERTIFICATE_EXPIRED,
                    f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} "
                    "UTC; renew it and upload the renewed file",
                )
            )
        elif now < cert.not_valid_before_utc:
            problems.append(
                Problem(
                    CertReason.CERTIFICATE_NOT_YET_VALID,
                    f"{what} is valid only from "
                    f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; use the certificate "
                    "that is valid now, or check the issuing system's clock",
                )
            )
    return problems


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def _normalize(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def name_covers(pattern: str, hostname: str) -> bool:
    """RFC 6125 matching: a wildcard is a whole left-most label covering exactly one label.

    `*.contoso.com` covers `www.contoso.com` but neither `contoso.com` nor
    `a.b.contoso.com`; partial wildcards (`w*.contoso.com`) and wildcards
    right under a top-level domain (`*.com`) cover nothing.
    """
    pattern, hostname = _normalize(pattern), _normalize(hostname)
    if "*" in hostname or not hostname:
        return False
    if "*" not in pattern:
        return pattern == hostname
    first, _, rest = pattern.partition(".")
    if first != "*" or "*" in rest or rest.count(".") < 1:
        return False
    label, _, host_rest = hostname.partition(".")
    return bool(label) and host_rest == rest


def hostname_mismatch(leaf: x509.Certificate, hostname: str) -> list[Problem]:
    names = dns_names(leaf)
    if any(name_covers(pattern, hostname) for pattern in names):
        return []
    listed = ", ".join(names) if names else "none (only the subject CN, which does not count)"
    return [
        Problem(
            CertReason.HOSTNAME_MISMATCH,
            f"The certificate does not cover {_normalize(hostname)}: its DNS names are {listed}. "
            f"Use a certificate whose subject alternative names include {_normalize(hostname)} "
            "or a matching wildcard",
        )
    ]


def days_left(leaf: x509.Certificate, now: datetime) -> tuple[int, timedelta]:
    remaining = leaf.not_valid_after_utc - now
    return remaining.days, remaining
