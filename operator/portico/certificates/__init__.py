"""Certificate import and validation for custom domains.

`convert_pfx` and `validate_tls_pair` take bytes and return either a
ConvertedCertificate (ready for a kubernetes.io/tls Secret) or a Rejection
with a CamelCase reason and a message a person can act on. Both are pure and
safe to run in a worker thread.
"""

from portico.certificates.checks import name_covers
from portico.certificates.convert import convert_pfx, order_chain, validate_tls_pair
from portico.certificates.result import (
    EXPIRY_WARNING_DAYS,
    CertificateSummary,
    CertificateVerdict,
    CertReason,
    ConvertedCertificate,
    Problem,
    Rejection,
)

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CertReason",
    "CertificateSummary",
    "CertificateVerdict",
    "ConvertedCertificate",
    "Problem",
    "Rejection",
    "convert_pfx",
    "name_covers",
    "order_chain",
    "validate_tls_pair",
]
