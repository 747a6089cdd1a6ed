"""What certificate validation returns: a converted certificate or a rejection.

Nothing here holds the password; only ConvertedCertificate holds the private
key, kept out of its repr so it cannot slip into a log line by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

# A certificate this close to notAfter raises CertificateExpiringSoon.
EXPIRY_WARNING_DAYS = 30


class CertReason(StrEnum):
    INVALID_PFX = "InvalidPfx"
    INVALID_CERTIFICATE = "InvalidCertificate"  # tls.crt holds no PEM certificate
    INVALID_PRIVATE_KEY = "InvalidPrivateKey"  # tls.key unreadable or encrypted
    MISSING_PRIVATE_KEY = "MissingPrivateKey"
    KEY_MISMATCH = "KeyMismatch"
    WEAK_SIGNATURE = "WeakSignature"
    WEAK_KEY = "WeakKey"
    MISSING_SERVER_AUTH = "MissingServerAuth"
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_NOT_YET_VALID = "CertificateNotYetValid"
    HOSTNAME_MISMATCH = "HostnameMismatch"
    # The .pfx asks for more key-derivation work than any real export (pkcs12_cost.py).
    PFX_TOO_EXPENSIVE = "PfxTooExpensive"
    # The check ran out of its CPU or wall-clock allowance in the worker process.
    CERTIFICATE_CHECK_TIMED_OUT = "CertificateCheckTimedOut"
    # Not a rejection: the warning a valid certificate near its end carries.
    CERTIFICATE_EXPIRING_SOON = "CertificateExpiringSoon"


@dataclass(frozen=True)
class CertificateSummary:
    """Public facts about the leaf certificate; safe for status, events and logs."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    signature_algorithm: str
    sha256_fingerprint: str
    public_key: str  # e.g. "RSA 2048", "EC secp256r1"

    def as_status(self) -> dict[str, Any]:
        """The `status.certificate` fields (the operator adds `source`)."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "dnsNames": list(self.dns_names),
            "notBefore": _iso(self.not_before),
            "notAfter": _iso(self.not_after),
            "signatureAlgorithm": self.signature_algorithm,
            "sha256Fingerprint": self.sha256_fingerprint,
            "publicKey": self.public_key,
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Problem:
    reason: CertReason
    message: str


@dataclass(frozen=True)
class Rejection:
    """The certificate cannot be used; `reason`/`message` are the first problem."""

    problems: tuple[Problem, ...]
    summary: CertificateSummary | None = None  # when the leaf could be read
    ok: Literal[False] = False

    @property
    def reason(self) -> CertReason:
        return self.problems[0].reason

    @property
    def message(self) -> str:
        return self.problems[0].message


@dataclass(frozen=True)
class ConvertedCertificate:
    """A usable certificate, ready for a `kubernetes.io/tls` Secret."""

    certificate_pem: bytes = field(repr=False)  # leaf first, then its chain in issuer order
    private_key_pem: bytes = field(repr=False)  # PKCS#8, unencrypted
    summary: CertificateSummary = field(kw_only=True)
    days_left: int = field(kw_only=True)  # whole days until notAfter
    expiring_soon: bool = field(kw_only=True)  # at most EXPIRY_WARNING_DAYS left
    warnings: tuple[str, ...] = field(default=(), kw_only=True)
    ok: Literal[True] = field(default=True, kw_only=True)

    @property
    def expiry_message(self) -> str:
        return (
            f"The certificate for {self.summary.subject} expires on "
            f"{_iso(self.summary.not_after)} ({self.days_left} days left); "
            "renew it and update the Secret"
        )

    def tls_secret_data(self) -> dict[str, bytes]:
        """`data` of a kubernetes.io/tls Secret (values still to base64-encode)."""
        return {"tls.crt": self.certificate_pem, "tls.key": self.private_key_pem}


CertificateVerdict = ConvertedCertificate | Rejection
