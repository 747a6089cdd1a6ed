"""The sign-in settings of portal.json (`authentication`, `webRoles`, `visibility`,
`sessions`, `mail`), read from the configuration as it is now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portico_runtime.config import Portal
from portico_runtime.identity.rules import Members, WebRole

# Where the operator mounts the portal's session keys (docs/runtime-contract.md).
DEFAULT_KEYS_FILE = "/etc/portico/secrets/session/keys"
DEFAULT_MAX_AGE = 8 * 3600
DEFAULT_REFRESH = 60


@dataclass(frozen=True)
class Provider:
    name: str
    issuer: str
    client_id: str
    client_secret_file: str
    display_name: str = ""

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Mail:
    host: str
    port: int
    sender: str
    username_file: str = ""
    password_file: str = ""
    # As the operator's mail.tls: "none", "opportunistic" (STARTTLS when offered),
    # "starttls" (required) or "tls" (TLS from the first byte).
    tls: str = "none"


@dataclass(frozen=True)
class Identity:
    local_sign_in: bool
    registration: str
    providers: tuple[Provider, ...]
    web_roles: tuple[WebRole, ...]
    private: bool
    allow: Members
    keys_file: str
    max_age: int
    refresh: int  # seconds between re-reads of a signed-in contact and their roles
    mail: Mail | None

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def identity(portal: Portal) -> Identity:
    raw = portal.raw
    auth = _dict(raw.get("authentication"))
    providers = tuple(
        Provider(
            name=str(p.get("name", "")),
            issuer=str(p.get("issuer", "")),
            client_id=str(p.get("clientId", "")),
            client_secret_file=str(p.get("clientSecretFile", "")),
            display_name=str(p.get("displayName") or p.get("name", "")),
        )
        for p in auth.get("identityProviders") or []
        if isinstance(p, dict) and p.get("name")
    )
    web_roles = tuple(
        WebRole(str(r["name"]), Members.parse(r.get("members")))
        for r in raw.get("webRoles") or []
        if isinstance(r, dict) and r.get("name")
    )
    visibility = _dict(raw.get("visibility"))
    sessions = _dict(raw.get("sessions"))
    mail = _dict(raw.get("mail"))
    return Identity(
        local_sign_in=bool(auth.get("localSignIn", True)),
        registration=str(auth.get("registration") or "InvitationOnly"),
        providers=providers,
        web_roles=web_roles,
        private=visibility.get("mode") == "Private",
        allow=Members.parse(visibility.get("allow")),
        keys_file=str(sessions.get("keysFile") or DEFAULT_KEYS_FILE),
        max_age=int(sessions.get("maxAgeSeconds") or DEFAULT_MAX_AGE),
        refresh=int(sessions.get("refreshSeconds") or DEFAULT_REFRESH),
        mail=Mail(
            host=str(mail["host"]),
            port=int(mail.get("port") or 25),
            sender=str(mail.get("from") or ""),
            username_file=str(mail.get("usernameFile") or ""),
            password_file=str(mail.get("passwordFile") or ""),
            tls=str(mail.get("tls") or ("starttls" if mail.get("starttls") else "none")),
        )
        if mail.get("host")
        else None,
    )
