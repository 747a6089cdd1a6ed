"""Which cert-manager issuers a portal's `customDomain.tls.issuerRef` may name (pure).

An issuer signs for whoever asks it, so naming one is a privilege the platform team
grants, not a tenant's choice: the operator's `allowedIssuers` setting lists them as
`Kind/name` (group cert-manager.io) or `Kind.group/name` (an external issuer), e.g.
`ClusterIssuer/letsencrypt`. `Issuer/*` lets every portal use the Issuers of its own
namespace (which its team controls anyway). Nothing listed: no issuerRef is allowed.
"""

from __future__ import annotations

import re

from portico.api.model import IssuerRef

DEFAULT_GROUP = "cert-manager.io"
KINDS = ("Issuer", "ClusterIssuer")
_ENTRY = re.compile(r"^(Issuer|ClusterIssuer)(?:\.([a-z0-9.-]+))?/([a-z0-9.*-]+)$")


def parse_entry(entry: str) -> tuple[str, str, str] | None:
    """(kind, group, name) of one `allowedIssuers` entry, None when it is malformed."""
    match = _ENTRY.match(entry.strip())
    if not match or ("*" in match[3] and match[3] != "*"):
        return None
    return match[1], match[2] or DEFAULT_GROUP, match[3]


def label(ref: IssuerRef) -> str:
    """REF in the settings' own notation, so a refusal says exactly what to allow."""
    group = "" if ref.group == DEFAULT_GROUP else f".{ref.group}"
    return f"{ref.kind}{group}/{ref.name}"


def allowed(ref: IssuerRef, entries: tuple[str, ...]) -> bool:
    for entry in entries:
        parsed = parse_entry(entry)
        if parsed is None:
            continue
        kind, group, name = parsed
        if (kind, group) == (ref.kind, ref.group) and name in ("*", ref.name):
            return True
    return False
