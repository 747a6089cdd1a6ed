"""The reasons a portal gives, as enums: the phase follows from which enum a reason is in.

No hand-kept list: a reason a person must fix is a `Failure` (or a certificate
rejection); anything else is progress, and the portal is still Configuring.
"""

from __future__ import annotations

from enum import StrEnum

from portico.certificates import CertReason


class Failure(StrEnum):
    """Reasons only a person can fix: phase Failed until the spec or a referenced object changes."""

    INSTANCE_NOT_FOUND = "InstanceNotFound"
    NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
    LANGUAGE_NOT_INSTALLED = "LanguageNotInstalled"
    ADMINISTRATOR_NOT_ALLOWED = "AdministratorNotAllowed"
    CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
    CREDENTIALS_NOT_ALLOWED = "CredentialsNotAllowed"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    PREREQUISITE_MISSING = "PrerequisiteMissing"
    INSTALL_FAILED = "InstallFailed"
    IMPORT_FAILED = "ImportFailed"
    SUBDOMAIN_TAKEN = "SubdomainTaken"
    DOMAIN_TAKEN = "DomainTaken"
    HOSTNAME_NOT_ALLOWED = "HostnameNotAllowed"
    SECRET_NOT_FOUND = "SecretNotFound"
    # A referenced Secret without the label the Secret watch selects (docs/user-guide.md).
    SECRET_NOT_LABELLED = "SecretNotLabelled"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    CERT_MANAGER_NOT_ENABLED = "CertManagerNotEnabled"
    ISSUER_NOT_ALLOWED = "IssuerNotAllowed"
    CHILD_CONFLICT = "ChildConflict"


# Losing one of these withdraws what the portal may no longer have: the copied
# instance credentials, its routing and its runtime (DomainTaken: the custom host's
# routing and certificate only, see `core.custom_domain`).
WITHDRAWN = frozenset(
    {
        Failure.INSTANCE_NOT_FOUND,
        Failure.NAMESPACE_NOT_ALLOWED,
        Failure.CREDENTIALS_NOT_FOUND,
        Failure.CREDENTIALS_NOT_ALLOWED,
        Failure.SUBDOMAIN_TAKEN,
        Failure.IMAGE_NOT_ALLOWED,
    }
)

FAILED = frozenset(Failure) | (frozenset(CertReason) - {CertReason.CERTIFICATE_EXPIRING_SOON})

RECONCILE_SUCCESS = "ReconcileSuccess"
RECONCILE_ERROR = "ReconcileError"


def is_failure(reason: str) -> bool:
    return reason in FAILED
