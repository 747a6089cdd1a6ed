"""Read a .pfx or a PEM pair, order its chain, apply the policy, convert for Kubernetes.

Bytes in, verdict out: no I/O and no shared state, so the operator can run
these in a thread. Parse errors from cryptography are never passed through:
every message is written here, so none can carry the password or key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from portico.certificates import checks, pkcs12_cost
from portico.certificates.result import (
    EXPIRY_WARNING_DAYS,
    CertificateSummary,
    CertificateVerdict,
    CertReason,
    ConvertedCertificate,
    Problem,
    Rejection,
)

INVALID_PFX = (
    "Could not open the .pfx file: either the password is wrong or the file is not a valid "
    "PKCS#12 (.pfx/.p12) file (a wrong password and a damaged file look the same). Check the "
    "password, and export the certificate again as .pfx with its private key"
)


def reject(reason: CertReason, message: str, leaf: x509.Certificate | None = None) -> Rejection:
    return Rejection((Problem(reason, message),), summarize(leaf) if leaf else None)


def summarize(leaf: x509.Certificate) -> CertificateSummary:
    return CertificateSummary(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        dns_names=checks.dns_names(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        signature_algorithm=checks.signature_name(leaf),
        sha256_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        public_key=checks.public_key_name(leaf),
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def order_chain(
    leaf: x509.Certificate, others: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """Leaf first, then each certificate's issuer; returns (chain, unrelated)."""
    seen = {leaf.fingerprint(hashes.SHA256())}
    pool = []
    for cert in others:
        if (fp := cert.fingerprint(hashes.SHA256())) not in seen:
            seen.add(fp)
            pool.append(cert)
    chain = [leaf]
    while pool and chain[-1].issuer != chain[-1].subject:
        named = [c for c in pool if c.subject == chain[-1].issuer]
        if not named:
            break
        # Several CAs may share a name (re-keyed CAs); the signature decides.
        issuer = next((c for c in named if _issued_by(chain[-1], c)), named[0])
        chain.append(issuer)
        pool.remove(issuer)
    return chain, pool


def _leaf_for(
    key: PrivateKeyTypes, preferred: x509.Certificate | None, certs: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """The certificate of this key: the one the file names, else any that matches."""
    candidates = ([preferred] if preferred else []) + list(certs)
    return next((c for c in candidates if checks.same_public_key(c, key.public_key())), None)


def _end_entity(certs: Sequence[x509.Certificate]) -> x509.Certificate:
    """Without a key to tell, the leaf is the certificate that issued no other."""
    issuers = {c.issuer for c in certs if c.issuer != c.subject}
    return next((c for c in certs if c.subject not in issuers), certs[0])


def validate(
    key: PrivateKeyTypes | None,
    certs: Sequence[x509.Certificate],
    preferred: x509.Certificate | None = None,
    *,
    hostname: str | None = None,
    now: datetime | None = None,
    source: str = "The .pfx file",
) -> CertificateVerdict:
    """The policy shared by .pfx and PEM input, once both are parsed."""
    now = now or datetime.now(UTC)
    if not certs and preferred is None:
        return reject(CertReason.INVALID_CERTIFICATE, f"{source} holds no certificate")
    if key is None:
        return reject(
            CertReason.MISSING_PRIVATE_KEY,
            f"{source} holds no private key. Export the certificate again including its "
            "private key (with openssl: openssl pkcs12 -export -in cert.pem -inkey key.pem)",
            preferred or _end_entity(certs),
        )
    leaf = _leaf_for(key, preferred, certs)
    if leaf is None:
        shown = preferred or _end_entity(certs)
        return reject(
            CertReason.KEY_MISMATCH,
            f"The private key does not belong to the certificate "
            f"'{shown.subject.rfc4514_string()}'. Export the certificate together with "
            "its own private key",
            shown,
        )
    chain, unrelated = order_chain(leaf, [c for c in [preferred, *certs] if c is not None])
    problems = [
        *checks.weak_signatures(chain),
        *checks.weak_keys(chain),
        *checks.missing_server_auth(leaf),
        *checks.validity(chain, now),
        *(checks.hostname_mismatch(leaf, hostname) if hostname else []),
    ]
    if problems:
        return Rejection(tuple(problems), summarize(leaf))
    days, remaining = checks.days_left(leaf, now)
    return ConvertedCertificate(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        summary=summarize(leaf),
        days_left=days,
        expiring_soon=remaining <= timedelta(days=EXPIRY_WARNING_DAYS),
        warnings=_warnings(chain, unrelated),
    )


def _warnings(chain: list[x509.Certificate], unrelated: list[x509.Certificate]) -> tuple[str, ...]:
    notes = []
    leaf = chain[0]
    if len(chain) == 1 and leaf.issuer == leaf.subject:
        notes.append("The certificate is self-signed: browsers will not trust it")
    elif len(chain) == 1:
        # Roots are commonly left out; a missing intermediate breaks many clients.
        notes.append(
            f"The file holds no certificate of the issuer '{leaf.issuer.rfc4514_string()}'; "
            "if it is an intermediate CA, include it or some clients will not trust the site"
        )
    if unrelated:
        notes.append(f"Left out {len(unrelated)} certificate(s) not in the leaf's chain")
    return tuple(notes)


def _passwords(password: str | bytes | None) -> list[bytes | None]:
    """Passwords to try: a file exported 'without' one may use none or an empty one,
    and a password Secret made from a file often ends with a newline."""
    if password is None or password in ("", b""):
        return [None, b""]
    raw = password.encode() if isinstance(password, str) else password
    trimmed = raw.rstrip(b"\r\n")
    return [raw, trimmed] if trimmed and trimmed != raw else [raw]


def convert_pfx(
    data: bytes,
    password: str | bytes | None,
    *,
    hostname: str | None = None,
    now: datetime | None = None,
) -> CertificateVerdict:
    """Open a .pfx (AES-256, 3DES or legacy RC2), check it, convert it for a TLS Secret.

    The file's own iteration counts are judged before OpenSSL derives any key: a
    hostile count (up to 2^31) would otherwise cost minutes of CPU per attempt.
    """
    try:
        expensive = pkcs12_cost.too_expensive(pkcs12_cost.iteration_counts(data))
    except pkcs12_cost.Malformed:
        return _unreadable(data)
    if expensive:
        return reject(
            CertReason.PFX_TOO_EXPENSIVE,
            f"The .pfx file is too expensive to open: {expensive}. Export it again with "
            "your tool's default settings (for example openssl pkcs12 -export without "
            "-iter or -maciter) and update the Secret",
        )
    for candidate in _passwords(password):
        try:
            bundle = pkcs12.load_pkcs12(data, candidate)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        break
    else:
        return _unreadable(data)
    preferred = bundle.cert.certificate if bundle.cert else None
    others = [c.certificate for c in bundle.additional_certs]
    return validate(bundle.key, others, preferred, hostname=hostname, now=now)


def _unreadable(data: bytes) -> Rejection:
    hint = ""
    if data.lstrip().startswith(b"-----BEGIN"):
        hint = " (this file is PEM text, not a .pfx: use a kubernetes.io/tls Secret instead)"
    return reject(CertReason.INVALID_PFX, INVALID_PFX + hint)


def validate_tls_pair(
    certificate_pem: bytes,
    private_key_pem: bytes,
    *,
    hostname: str | None = None,
    now: datetime | None = None,
) -> CertificateVerdict:
    """Check an existing kubernetes.io/tls Secret's tls.crt and tls.key by the same rules."""
    try:
        certs = x509.load_pem_x509_certificates(certificate_pem)
    except ValueError:
        return reject(
            CertReason.INVALID_CERTIFICATE,
            "tls.crt holds no readable PEM certificate; it must contain the certificate "
            "(and its chain) as -----BEGIN CERTIFICATE----- blocks",
        )
    if not private_key_pem.strip():
        return reject(
            CertReason.MISSING_PRIVATE_KEY,
            "tls.key is empty; it must hold the certificate's private key",
            _end_entity(certs),
        )
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except TypeError:
        return reject(
            CertReason.INVALID_PRIVATE_KEY,
            "tls.key is encrypted with a passphrase; store the key unencrypted "
            "(openssl pkey -in key.pem -out tls.key)",
        )
    except (ValueError, UnsupportedAlgorithm):
        return reject(
            CertReason.INVALID_PRIVATE_KEY,
            "tls.key holds no readable PEM private key; it must contain one "
            "-----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block",
        )
    return validate(key, certs, hostname=hostname, now=now, source="tls.crt")
