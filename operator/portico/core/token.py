"""The portal's instance token (pure): keep it, mint a new one, or revoke the old one.

A portal's runtime gets a token the instance minted for that portal alone (the
token exchange of docs/runtime-contract.md), never the instance's own
credentials. The token lives in the operator-owned Secret `<portal>-instance`
(key `token`, plus the instance's `ca.crt` when it has one); which token that is
— its id at the instance, its expiry and the instance that minted it — is kept
in that Secret's annotations, so it survives restarts at no extra read.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portico.api.model import PortalInstance
from portico.core import names
from portico.core.observed import SecretView

TOKEN_ID = "portico.dev/token-id"
TOKEN_EXPIRES = "portico.dev/token-expires-at"
# "<instance name> <url>": a token minted by another instance (or URL) is replaced.
TOKEN_INSTANCE = "portico.dev/token-instance"
CA_KEY = "ca.crt"


@dataclass(frozen=True)
class Held:
    """The token the portal's Secret holds now, as its annotations say."""

    id: str
    expires: datetime.datetime
    instance: str


@dataclass(frozen=True)
class TokenPlan:
    # Secret data to render (base64 values); without `token` when one is to be minted.
    data: Mapping[str, str] = field(default_factory=dict, repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # Ask the instance for a new token (act fills data.token and the annotations in).
    mint: bool = False
    # Seconds until the token is to be renewed (a timer, like the trial's expiry).
    renew_in: float | None = None


def minted_by(instance: PortalInstance) -> str:
    return f"{instance.name} {instance.url}"


def held(secret: Mapping[str, Any] | None) -> Held | None:
    if secret is None:
        return None
    annotations = secret.get("metadata", {}).get("annotations") or {}
    token_id, expires = annotations.get(TOKEN_ID), annotations.get(TOKEN_EXPIRES)
    if not token_id or not expires or "token" not in (secret.get("data") or {}):
        return None
    try:
        moment = names.parse_time(expires)
    except ValueError:
        return None
    return Held(token_id, moment, annotations.get(TOKEN_INSTANCE, ""))


def plan(
    secret: Mapping[str, Any] | None,
    instance: PortalInstance,
    credentials: SecretView | None,
    now: datetime.datetime,
    ttl_seconds: float,
) -> TokenPlan:
    """Keep the token while it has more than a third of its life left, else mint one."""
    ca = (credentials.data if credentials else {}).get(CA_KEY)
    extra = {CA_KEY: ca} if ca else {}
    current = held(secret)
    margin = datetime.timedelta(seconds=ttl_seconds / 3)
    if current and current.instance == minted_by(instance) and current.expires - now > margin:
        assert secret is not None
        data = {"token": secret["data"]["token"], **extra}
        annotations = {
            TOKEN_ID: current.id,
            TOKEN_EXPIRES: names.iso(current.expires),
            TOKEN_INSTANCE: current.instance,
        }
        renew = (current.expires - margin - now).total_seconds()
        return TokenPlan(data, annotations, renew_in=max(renew, 1.0))
    return TokenPlan(extra, {TOKEN_INSTANCE: minted_by(instance)}, mint=True)


def revocable(secret: Mapping[str, Any] | None, instance: PortalInstance | None) -> str:
    """The id of the token SECRET holds, if INSTANCE minted it (else only expiry ends it)."""
    current = held(secret)
    if current is None or instance is None or current.instance != minted_by(instance):
        return ""
    return current.id
