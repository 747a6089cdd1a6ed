"""Typed views of Portal and PortalInstance objects (already defaulted and admitted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portico.api.crds import API_VERSION


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class PfxRef:
    name: str
    key: str = "certificate.pfx"
    password_key: str = "password"


@dataclass(frozen=True)
class IssuerRef:
    name: str
    kind: str = "Issuer"
    group: str = "cert-manager.io"


@dataclass(frozen=True)
class CustomDomain:
    hostname: str
    pfx: PfxRef | None = None
    tls_secret: str | None = None
    issuer: IssuerRef | None = None

    @property
    def tls_source(self) -> str:
        if self.pfx:
            return "pfxSecretRef"
        return "secretRef" if self.tls_secret else "issuerRef"


@dataclass(frozen=True)
class CustomerInsights:
    hub_uri: str
    policy_name: str
    shared_key: SecretKeyRef
    interactions: tuple[str, ...]
    search_strings: str = "Send"


@dataclass(frozen=True)
class CloudEventsSink:
    """spec.analytics.cloudEvents: the same interactions as CloudEvents 1.0 batches."""

    url: str
    headers: SecretKeyRef | None
    interactions: tuple[str, ...]
    search_strings: str = "Send"


@dataclass(frozen=True)
class IdentityProvider:
    name: str
    issuer: str
    client_id: str
    client_secret: SecretKeyRef


@dataclass(frozen=True)
class Authentication:
    local_sign_in: bool = True
    registration: str = "InvitationOnly"
    identity_providers: tuple[IdentityProvider, ...] = ()


@dataclass(frozen=True)
class Runtime:
    image: str | None = None
    replicas: int | None = None
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Maintenance:
    """spec.maintenance while enabled: the page's line, Retry-After, and a custom page."""

    message: str = ""
    retry_after: int = 300
    page: SecretKeyRef | None = None  # a ConfigMap's name and key (same shape)


@dataclass(frozen=True)
class Portal:
    name: str
    namespace: str
    uid: str
    generation: int
    display_name: str
    type: str
    subdomain: str
    instance: str
    language: str
    additional_languages: tuple[str, ...]
    administrator: str
    audience: str
    template: str
    runtime: Runtime
    custom_domain: CustomDomain | None
    customer_insights: CustomerInsights | None
    authentication: Authentication
    paused: bool
    annotations: dict[str, str]
    # Sign-in rules as the CRD gives them (the runtime reads them from portal.json).
    web_roles: tuple[dict[str, Any], ...] = ()
    visibility: str = "Public"
    private_allow: dict[str, Any] = field(default_factory=dict)
    cloud_events: CloudEventsSink | None = None
    # Running, Stopped or Deprovisioned (spec.state).
    state: str = "Running"
    maintenance: Maintenance | None = None
    # spec.access.allowedSourceRanges (CIDR; empty: open to every address).
    allowed_source_ranges: tuple[str, ...] = ()

    @property
    def languages(self) -> tuple[str, ...]:
        """The default language first, then the additional ones."""
        return (self.language, *(x for x in self.additional_languages if x != self.language))

    @property
    def secret_refs(self) -> tuple[SecretKeyRef, ...]:
        """Secrets the runtime mounts (never copied): analytics key and OIDC client secrets."""
        refs = [idp.client_secret for idp in self.authentication.identity_providers]
        if self.cloud_events and self.cloud_events.headers:
            refs.insert(0, self.cloud_events.headers)
        if self.customer_insights:
            refs.insert(0, self.customer_insights.shared_key)
        return tuple(refs)

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "Portal",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class PortalInstance:
    name: str
    url: str
    credentials: tuple[str, str]  # (namespace, name) of the credentials Secret
    languages: tuple[str, ...]
    solutions: tuple[str, ...]
    administrators: tuple[str, ...]
    # "" (not set): no namespace may link; "All"; or "Selector" with `selector`.
    allowed_from: str = ""
    selector: dict[str, Any] = field(default_factory=dict)
    # Image patterns (shell-style) a linked portal may run besides the default runtime.
    allowed_images: tuple[str, ...] = ()
    # The instance is served over plain http (test instances only): the runtime allows it.
    insecure: bool = False


def _key_ref(raw: dict[str, Any]) -> SecretKeyRef:
    return SecretKeyRef(name=raw["name"], key=raw["key"])


def _custom_domain(raw: dict[str, Any] | None) -> CustomDomain | None:
    if not raw:
        return None
    tls = raw.get("tls", {})
    pfx = tls.get("pfxSecretRef")
    issuer = tls.get("issuerRef")
    return CustomDomain(
        hostname=raw["hostname"],
        pfx=PfxRef(
            pfx["name"], pfx.get("key", "certificate.pfx"), pfx.get("passwordKey", "password")
        )
        if pfx
        else None,
        tls_secret=tls.get("secretRef", {}).get("name"),
        issuer=IssuerRef(
            issuer["name"], issuer.get("kind", "Issuer"), issuer.get("group", "cert-manager.io")
        )
        if issuer
        else None,
    )


def _customer_insights(raw: dict[str, Any] | None) -> CustomerInsights | None:
    if not raw:
        return None
    return CustomerInsights(
        hub_uri=raw["hubUri"],
        policy_name=raw["policyName"],
        shared_key=_key_ref(raw["sharedKeySecretRef"]),
        interactions=tuple(raw.get("interactions", ())),
        search_strings=raw.get("searchStrings", "Send"),
    )


def _cloud_events(raw: dict[str, Any] | None) -> CloudEventsSink | None:
    if not raw:
        return None
    headers = raw.get("headersSecretRef")
    return CloudEventsSink(
        url=raw["url"],
        headers=_key_ref(headers) if headers else None,
        interactions=tuple(raw.get("interactions", ())),
        search_strings=raw.get("searchStrings", "Send"),
    )


def _authentication(raw: dict[str, Any]) -> Authentication:
    return Authentication(
        local_sign_in=raw.get("localSignIn", True),
        registration=raw.get("registration", "InvitationOnly"),
        identity_providers=tuple(
            IdentityProvider(p["name"], p["issuer"], p["clientId"], _key_ref(p["clientSecretRef"]))
            for p in raw.get("identityProviders", ())
        ),
    )


def parse_portal(obj: dict[str, Any]) -> Portal:
    meta, spec = obj["metadata"], obj["spec"]
    runtime = spec.get("runtime", {})
    return Portal(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 1)),
        display_name=spec["displayName"],
        type=spec.get("type", "Trial"),
        subdomain=spec["subdomain"],
        instance=spec["instanceRef"]["name"],
        language=spec["language"],
        additional_languages=tuple(spec.get("additionalLanguages", ())),
        administrator=spec["administrator"],
        audience=spec["audience"],
        template=spec["template"],
        runtime=Runtime(
            runtime.get("image"), runtime.get("replicas"), runtime.get("resources", {})
        ),
        custom_domain=_custom_domain(spec.get("customDomain")),
        customer_insights=_customer_insights(spec.get("analytics", {}).get("customerInsights")),
        cloud_events=_cloud_events(spec.get("analytics", {}).get("cloudEvents")),
        authentication=_authentication(spec.get("authentication", {})),
        paused=bool(spec.get("paused", False)),
        annotations=dict(meta.get("annotations") or {}),
        web_roles=tuple(spec.get("webRoles") or ()),
        visibility=spec.get("visibility", "Public"),
        private_allow=dict((spec.get("private") or {}).get("allow") or {}),
        state=spec.get("state", "Running"),
        maintenance=_maintenance(spec.get("maintenance")),
        allowed_source_ranges=tuple((spec.get("access") or {}).get("allowedSourceRanges") or ()),
    )


def _maintenance(spec: dict[str, Any] | None) -> Maintenance | None:
    """None unless maintenance is enabled: a disabled block is kept ready, not applied."""
    if not spec or not spec.get("enabled"):
        return None
    ref = (spec.get("page") or {}).get("configMapRef")
    page = SecretKeyRef(ref["name"], ref.get("key", "maintenance.html")) if ref else None
    return Maintenance(
        str(spec.get("message") or ""), int(spec.get("retryAfterSeconds", 300)), page
    )


def parse_instance(obj: dict[str, Any]) -> PortalInstance:
    spec = obj["spec"]
    allowed = spec.get("allowedNamespaces") or {}
    creds = spec["credentialsSecretRef"]
    return PortalInstance(
        name=obj["metadata"]["name"],
        url=spec["url"],
        credentials=(creds["namespace"], creds["name"]),
        languages=tuple(spec.get("languages", ())),
        solutions=tuple(spec.get("solutions", ())),
        administrators=tuple(spec.get("administrators", ())),
        allowed_from=allowed.get("from", ""),
        selector=allowed.get("selector", {}),
        allowed_images=tuple(spec.get("allowedImages", ())),
        insecure=spec.get("insecure") is True,
    )


@dataclass(frozen=True)
class Contact:
    email: str
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class Invitation:
    """A PortalInvitation (already defaulted and admitted)."""

    name: str
    namespace: str
    uid: str
    generation: int
    portal: str
    contact: Contact | None
    type: str
    max_redemptions: int  # Group: 0 = unlimited; Single: always 1
    expires_after: str | None
    expires_at: str | None
    web_roles: tuple[str, ...]
    delivery: str
    revoked: bool
    resend: str
    undo_redemptions: tuple[str, ...]
    created: str  # metadata.creationTimestamp
    deleting: bool
    finalizers: tuple[str, ...]

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "PortalInvitation",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def parse_invitation(obj: dict[str, Any]) -> Invitation:
    meta, spec = obj["metadata"], obj["spec"]
    contact = spec.get("contact")
    kind = spec.get("type", "Single")
    return Invitation(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 1)),
        portal=spec["portalRef"]["name"],
        contact=Contact(contact["email"], contact.get("firstName", ""), contact.get("lastName", ""))
        if contact
        else None,
        type=kind,
        max_redemptions=int(spec.get("maxRedemptions", 0)) if kind == "Group" else 1,
        expires_after=spec.get("expiresAfter"),
        expires_at=spec.get("expiresAt"),
        web_roles=tuple(spec.get("webRoles", ())),
        delivery=spec.get("delivery", "Email"),
        revoked=bool(spec.get("revoked", False)),
        resend=str(spec.get("resend", "")),
        undo_redemptions=tuple(spec.get("undoRedemptions", ())),
        created=str(meta.get("creationTimestamp", "")),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
    )
