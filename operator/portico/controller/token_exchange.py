"""The token exchange with a backing instance (docs/runtime-contract.md): I/O at the edge.

(The instance API's other calls, invitations, are `instance_api.InstanceClient`; both
build the Authorization header with `instance_api.authorization`.)

The operator holds the instance's own credentials (read from the Secret its
PortalInstance names) and uses them only here: to mint a token valid for one portal
and to revoke it. Redirects are never followed, plain http only when the instance
says `insecure: true`, every request has a timeout, and no error message carries a
credential or a response body.
"""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from portico.api.model import PortalInstance
from portico.controller.instance_api import authorization, tls_context
from portico.core.observed import SecretView

TIMEOUT = 10.0


class TokenExchangeFailed(Exception):
    """The instance did not mint or revoke; the message is safe for status and Events.

    Permanent: only a person can fix it (credentials refused or incomplete, a plain http
    URL): the portal is Failed. Otherwise (unreachable, a 5xx) it is retried with backoff.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Minted:
    id: str
    token: str = field(repr=False)
    expires: datetime.datetime


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx answer is an error: credentials never follow a redirect


def _authorization(credentials: SecretView) -> str:
    keys = credentials.data
    if "token" not in keys and not ("username" in keys and "password" in keys):
        raise TokenExchangeFailed(
            f"the credentials Secret {credentials.name} has neither a 'token' key nor "
            "'username' and 'password'; add them",
            permanent=True,
        )
    return authorization(credentials)


def _call(
    instance: PortalInstance, credentials: SecretView, method: str, path: str, body: Any = None
) -> Any:
    scheme = urllib.parse.urlsplit(instance.url).scheme.lower()
    if scheme != "https" and not (scheme == "http" and instance.insecure):
        raise TokenExchangeFailed(
            f"PortalInstance {instance.name} has a plain http URL; Portico sends the "
            "instance's credentials only over TLS: use https://, or set spec.insecure: true "
            "on a test instance",
            permanent=True,
        )
    handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
    if scheme == "https":
        handlers.append(urllib.request.HTTPSHandler(context=tls_context(credentials)))
    opener = urllib.request.build_opener(*handlers)
    url = instance.url.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_unredirected_header("Authorization", _authorization(credentials))
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    where = f"the instance at {instance.url}"
    try:
        with opener.open(request, timeout=TIMEOUT) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise TokenExchangeFailed(
                f"{where} refused the credentials of PortalInstance {instance.name} (HTTP "
                f"{err.code}) when asked for the portal's token; fix the credentials Secret",
                permanent=True,
            ) from None
        raise TokenExchangeFailed(
            f"{where} answered HTTP {err.code} when asked for the portal's token"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TokenExchangeFailed(f"{where} is unreachable: {reason}") from None
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise TokenExchangeFailed(f"{where} did not answer JSON to the token exchange") from None


def mint(
    instance: PortalInstance, credentials: SecretView, namespace: str, portal: str, ttl: int
) -> Minted:
    body = {"namespace": namespace, "portal": portal, "ttlSeconds": ttl}
    answer = _call(instance, credentials, "POST", "/portico/v1/tokens", body)
    try:
        expires = datetime.datetime.fromisoformat(str(answer["expiresAt"]))
        if expires.tzinfo is None:
            raise ValueError("expiresAt without a time zone")
        return Minted(str(answer["id"]), str(answer["token"]), expires.astimezone(datetime.UTC))
    except (KeyError, TypeError, ValueError):
        raise TokenExchangeFailed(
            f"the instance at {instance.url} answered the token exchange without id, token "
            "and expiresAt (RFC 3339, UTC)"
        ) from None


def revoke(instance: PortalInstance, credentials: SecretView, token_id: str) -> None:
    _call(instance, credentials, "DELETE", f"/portico/v1/tokens/{quote(token_id, safe='')}")
