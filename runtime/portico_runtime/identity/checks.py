"""What `provision` checks of sign-in before a portal serves: each identity provider's
discovery document and JWKS, and the mail server. Each problem is one line a person can
act on (it becomes the InstallFailed message); no secret goes into it. The providers'
TLS is trusted as sign-in trusts it (portico_runtime.trust)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from portico_runtime import trust
from portico_runtime.config import Portal
from portico_runtime.identity import mail, settings

TIMEOUT = 10.0


class CheckFailed(Exception):
    pass


def _get_json(url: str, what: str, context: ssl.SSLContext) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as answer:
            data = json.loads(answer.read(1_000_000))
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"{what} at {url} answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        if untrusted := trust.untrusted(exc):
            raise CheckFailed(f"{what} at {url} cannot be read: {untrusted}") from None
        raise CheckFailed(f"{what} at {url} is unreachable: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise CheckFailed(f"{what} at {url} is unreachable: {type(exc).__name__}") from None
    except ValueError:
        raise CheckFailed(f"{what} at {url} is not JSON") from None
    if not isinstance(data, dict):
        raise CheckFailed(f"{what} at {url} is not a JSON object")
    return data


def provider(p: settings.Provider, credentials_dir: str = "") -> None:
    """The provider's discovery document names this issuer and the endpoints the code flow
    needs, and its JWKS holds at least one key; its TLS trusted with the public roots and
    the instance credentials' ca.crt in CREDENTIALS_DIR."""
    where = f"identity provider {p.name}"
    context = trust.context(credentials_dir)
    doc = _get_json(p.discovery_url, f"{where}: the discovery document", context)
    if str(doc.get("issuer", "")).rstrip("/") != p.issuer.rstrip("/"):
        raise CheckFailed(
            f"{where}: the discovery document names the issuer {doc.get('issuer')!r}, "
            f"not {p.issuer!r}; set the issuer exactly as the provider spells it"
        )
    missing = [
        k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)
    ]
    if missing:
        raise CheckFailed(f"{where}: the discovery document lacks {', '.join(missing)}")
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise CheckFailed(
            f"{where}: the provider does not offer PKCE with S256, which sign-in needs"
        )
    keys = _get_json(str(doc["jwks_uri"]), f"{where}: the JWKS", context).get("keys")
    if not isinstance(keys, list) or not keys:
        raise CheckFailed(f"{where}: the JWKS at {doc['jwks_uri']} holds no keys")


def check(portal: Portal) -> list[str]:
    """Every problem of the portal's sign-in settings (empty: all good)."""
    ident = settings.identity(portal)
    problems: list[str] = []
    for p in ident.providers:
        try:
            provider(p, portal.credentials_dir)
        except CheckFailed as exc:
            problems.append(str(exc))
    if ident.mail is not None:
        try:
            mail.check(ident.mail)
        except mail.MailFailed as exc:
            problems.append(f"the mail server {exc}; check the operator's mail settings")
    return problems
