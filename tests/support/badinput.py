"""The bad-input corpus: every mistake a user can make, in one listing, with its named reason.

Two kinds of case, both run through the real API server (tests/controlplane/test_input_corpus.py):

- admission: the invalid schema and CEL cases of the shared corpus (tests/cases/,
  without the update-only transition cases): the API server rejects each, naming
  the field;
- operator: a Portal (plus what it refers to) the API server admits and the
  operator must answer with a named reason in `status` and an actionable message.

`Bad.fix` is words the message must hold (what to change, or the name at fault).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portico.core.names import SECRET_LABEL
from tests.support.corpus import Case, load_cases

# Values that must never appear in status, Events or the operator log.
SECRET_VALUES = ("bi-shared-key-v4lue", "bi-oidc-s3cret-value", "bi-pfx-passw0rd")


@dataclass(frozen=True)
class Where:
    """What an operator case needs beyond its Portal: the namespace, instance and DNS zone."""

    namespace: str
    instance: str  # the healthy instance
    restricted: str  # an instance that allows only namespaces labelled portals=allowed
    nocreds: str  # an instance whose credentials Secret does not exist
    zone: str  # a DNS zone the test serves: hosts are NAME.ZONE

    def host(self, name: str) -> str:
        return f"{name}.{self.zone}"


Objects = Callable[[Where, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class Bad:
    name: str
    layer: str  # admission | reference | certificate | dns | runtime
    reason: str  # admission: the field path the API server names; else status Ready reason
    fix: str = ""
    spec: dict[str, Any] = field(default_factory=dict)  # merged over a valid Portal spec
    phase: str = "Failed"
    objects: Objects | None = None  # Secrets and such the portal refers to
    cname: str = "target"  # DNS for NAME.ZONE: target | none | elsewhere | address
    # The ownership TXT record _portico-challenge.NAME.ZONE holds the portal's token.
    txt: bool = True
    case: Case | None = None  # admission: the shared corpus case


def secret(name: str, namespace: str, **data: str | bytes) -> dict[str, Any]:
    encoded = {
        k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()
        for k, v in data.items()
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
        "data": encoded,
    }


def _insights(name: str, key: str = "sharedKey") -> dict[str, Any]:
    ref = {"name": name, "key": key}
    return {
        "analytics": {
            "customerInsights": {
                "hubUri": "https://contoso.insights.example.net",
                "policyName": "portal-writer",
                "sharedKeySecretRef": ref,
            }
        }
    }


def _oidc(name: str, key: str = "clientSecret") -> dict[str, Any]:
    provider = {
        "name": "contoso-ad",
        "issuer": "https://login.contoso.example/v2.0",
        "clientId": "abc",
        "clientSecretRef": {"name": name, "key": key},
    }
    return {"authentication": {"identityProviders": [provider]}}


def _pfx(secret_name: str) -> Callable[[str], dict[str, Any]]:
    def spec(host: str) -> dict[str, Any]:
        return {"customDomain": {"hostname": host, "tls": {"pfxSecretRef": {"name": secret_name}}}}

    return spec


def admission_cases() -> list[Bad]:
    return [
        Bad(c.name, "admission", c.field, case=c)
        for c in load_cases()
        if not c.valid and c.admission_checks and c.old is None
    ]


def _analytics_key_missing(w: Where, name: str) -> list[dict[str, Any]]:
    return [secret(f"{name}-s", w.namespace, other="bi-shared-key-v4lue")]


def _oidc_key_missing(w: Where, name: str) -> list[dict[str, Any]]:
    return [secret(f"{name}-s", w.namespace, wrongKey="bi-oidc-s3cret-value")]


REFERENCE = [
    Bad("instance-missing", "reference", "InstanceNotFound", "no-such-crm",
        {"instanceRef": {"name": "no-such-crm"}}),
    Bad("language-not-installed", "reference", "LanguageNotInstalled", "it-IT",
        {"language": "it-IT"}),
    Bad("additional-language-not-installed", "reference", "LanguageNotInstalled", "pt-BR",
        {"additionalLanguages": ["de-DE", "pt-BR"]}),
    Bad("administrator-not-allowed", "reference", "AdministratorNotAllowed", "eve@example.com",
        {"administrator": "eve@example.com"}),
    Bad("prerequisite-missing", "reference", "PrerequisiteMissing", "ProjectService",
        {"audience": "Partner", "template": "PartnerProjectService"}),
    Bad("namespace-not-allowed", "reference", "NamespaceNotAllowed", "allowedNamespaces",
        {"instanceRef": {"name": "@restricted"}}),
    Bad("credentials-not-found", "reference", "CredentialsNotFound", "does not exist",
        {"instanceRef": {"name": "@nocreds"}}),
    Bad("image-not-allowed", "reference", "ImageNotAllowed", "evil.example.com/portal:1",
        {"runtime": {"image": "evil.example.com/portal:1"}}),
    Bad("subdomain-taken", "reference", "SubdomainTaken", "already used by portal",
        {"subdomain": "@healthy"}),
    Bad("analytics-secret-missing", "reference", "SecretNotFound", "bi-no-insights",
        _insights("bi-no-insights")),
    Bad("analytics-key-missing", "reference", "SecretKeyMissing", "sharedKey",
        _insights("@self"), objects=_analytics_key_missing),
    Bad("oidc-secret-missing", "reference", "SecretNotFound", "bi-no-oidc",
        _oidc("bi-no-oidc")),
    Bad("oidc-key-missing", "reference", "SecretKeyMissing", "clientSecret",
        _oidc("@self"), objects=_oidc_key_missing),
    Bad("hostname-under-base-domain", "reference", "HostnameNotAllowed", "portals.test",
        {"customDomain": {"hostname": "@base", "tls": {"secretRef": {"name": "x"}}}}),
]  # fmt: skip

DNS = [
    Bad("cname-missing", "dns", "CNAMEMissing", "Please add a CNAME record",
        {"customDomain": "@pfx"}, phase="Configuring", cname="none"),
    Bad("cname-mismatch", "dns", "CNAMEMismatch", "change the CNAME record",
        {"customDomain": "@pfx"}, phase="Configuring", cname="elsewhere"),
    Bad("address-not-cname", "dns", "ConflictingRecords", "remove them and add a CNAME",
        {"customDomain": "@pfx"}, phase="Configuring", cname="address"),
    Bad("ownership-missing", "dns", "OwnershipUnverified", "Please add a TXT record",
        {"customDomain": "@pfx"}, phase="Configuring", txt=False),
]  # fmt: skip

# Certificates: DNS is verified, so the certificate is what fails (see certificate_objects).
CERTIFICATE = [
    Bad("pfx-secret-missing", "certificate", "SecretNotFound", "-pfx", {"customDomain": "@pfx"}),
    Bad("pfx-key-missing", "certificate", "SecretKeyMissing", "certificate.pfx",
        {"customDomain": "@pfx"}),
    Bad("pfx-wrong-password", "certificate", "InvalidPfx", "password", {"customDomain": "@pfx"}),
    Bad("pfx-garbage", "certificate", "InvalidPfx", "", {"customDomain": "@pfx"}),
    Bad("pfx-other-host", "certificate", "HostnameMismatch", "", {"customDomain": "@pfx"}),
    Bad("pfx-expired", "certificate", "CertificateExpired", "", {"customDomain": "@pfx"}),
    Bad("pfx-no-key", "certificate", "MissingPrivateKey", "", {"customDomain": "@pfx"}),
    Bad("tls-pair-garbage", "certificate", "InvalidCertificate", "tls.crt",
        {"customDomain": "@tls"}),
]  # fmt: skip

RUNTIME = [
    # kwok's fail-once stage (devtools/portico_dev/stages.yaml) fails attempt 1.
    Bad("fail-once-install", "runtime", "InstallFailed", "BackoffLimitExceeded"),
]

OPERATOR = REFERENCE + DNS + CERTIFICATE + RUNTIME


def corpus() -> list[Bad]:
    return admission_cases() + OPERATOR


# -- PortalInvitation -----------------------------------------------------------------
# Admission cases of invitations are in the shared corpus (tests/cases/invitation.yaml,
# kind PortalInvitation) and so in admission_cases(). These the API server admits and the
# operator answers in status (tests/controlplane/test_invitations.py applies each against
# the stand-in instance and the tier's SMTP server). No invitation code may appear in
# status, Events or the operator log (test_zz_no_secrets looks for every code seen).


@dataclass(frozen=True)
class BadInvitation:
    name: str
    condition: str  # Registered | Delivered
    reason: str
    fix: str  # words the condition's message must hold
    state: str  # status.state
    spec: dict[str, Any] = field(default_factory=dict)  # merged over a valid invitation
    refuse: str = ""  # the SMTP server's answer to this recipient, when it refuses


INVITATIONS = [
    BadInvitation("inv-portal-missing", "Registered", "PortalNotFound", "spec.portalRef.name",
                  "Pending", {"portalRef": {"name": "no-such-portal"}}),
    BadInvitation("inv-recipient-refused", "Delivered", "DeliveryFailed",
                  "550 5.1.1 mailbox unavailable", "Pending",
                  refuse="550 5.1.1 mailbox unavailable"),
    BadInvitation("inv-expired-before-sent", "Delivered", "NotDelivered", "expired", "Expired",
                  {"expiresAt": "2020-01-01T00:00:00Z"}),
    BadInvitation("inv-revoked-before-sent", "Delivered", "NotDelivered", "revoked", "Revoked",
                  {"revoked": True}),
]  # fmt: skip
