"""Sign-in with OpenID Connect providers (`authentication.identityProviders[]`), through
Authlib: authorization code flow with PKCE (S256), `state` and `nonce` kept in the
session until the callback (and removed there: a replayed state finds nothing), the ID
token's signature checked against the provider's JWKS (fetched again when a `kid` is
unknown), its `iss`, `aud`, `exp` and `nonce` checked by Authlib. Nothing of the tokens
stays in the session: only who signed in. The provider's TLS (discovery, token, JWKS,
UserInfo) is trusted as the runtime's every call is (portico_runtime.trust): the public
roots plus the instance credentials' `ca.crt`, for a provider behind a private CA.

A person is found by the (issuer, subject) pair their provider gives. An e-mail address
links them to an existing contact only when the provider says `email_verified`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portico_runtime import trust
from portico_runtime.config import ConfigError, Portal, Reader
from portico_runtime.identity import backend as instance
from portico_runtime.identity import rules, sessions, settings, views
from portico_runtime.identity.backend import Backend, Unavailable
from portico_runtime.identity.flows import go, no_sessions, redeem_pending, start_session
from portico_runtime.identity.settings import Provider

log = logging.getLogger("portico.identity")
SCOPE = "openid email profile"
# Standard claims never stored in the session (they say nothing about who someone is).
_PROTOCOL_CLAIMS = {
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "azp",
    "auth_time",
    "amr",
    "acr",
    "sid",
    "jti",
}


class ProviderFailed(Exception):
    """The provider's sign-in could not be completed; the message names why (no secret)."""


def _secret(provider: Provider) -> str:
    try:
        return Path(provider.client_secret_file).read_text(encoding="utf-8").strip()
    except OSError:
        raise ProviderFailed(f"the client secret file of {provider.name} is missing") from None


class Registry:
    """One Authlib client per provider, made again when its settings, its secret or the
    CA it is trusted with change."""

    def __init__(self) -> None:
        self._clients: dict[str, tuple[tuple[object, ...], Any]] = {}

    def client(self, portal: Portal, provider: Provider) -> Any:
        secret = _secret(provider)
        verify = trust.context(portal.credentials_dir)
        key = (provider.issuer, provider.client_id, secret, id(verify))
        found = self._clients.get(provider.name)
        if found is None or found[0] != key:
            oauth = OAuth()
            oauth.register(
                provider.name,
                client_id=provider.client_id,
                client_secret=secret,
                server_metadata_url=provider.discovery_url,
                client_kwargs={
                    "scope": SCOPE,
                    "code_challenge_method": "S256",
                    "timeout": 10.0,
                    "verify": verify,  # every call Authlib makes: discovery, token, JWKS
                },
            )
            found = self._clients[provider.name] = (key, oauth.create_client(provider.name))
        return found[1]


_registry = Registry()


async def end_session_url(portal: Portal, provider: Provider) -> str:
    """The provider's RP-initiated logout address, when its discovery offers one."""
    try:
        client = _registry.client(portal, provider)
        metadata = await client.load_server_metadata()
    except Exception:  # the provider is down: signing out here still happened
        return ""
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return ""
    query = {
        "client_id": provider.client_id,
        "post_logout_redirect_uri": portal.url.rstrip("/") + "/",
    }
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


def _same_issuer(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def kept_claims(userinfo: dict[str, Any]) -> dict[str, Any]:
    """The claims web-role and visibility rules may look at (strings and lists of strings)."""
    kept: dict[str, Any] = {}
    for name, value in userinfo.items():
        if name in _PROTOCOL_CLAIMS or name in ("sub", "email", "email_verified"):
            continue
        if (isinstance(value, str) and len(value) <= 200) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value) and len(value) <= 50
        ):
            kept[name] = value
    return kept


def routes(reader: Reader, backend: Backend) -> list[Route]:
    async def signin(request: Request) -> Response:
        try:
            portal = reader.get()
        except ConfigError:
            return Response("not configured\n", 503, headers={"Retry-After": "30"})
        if not sessions.sessions_work(request):
            return no_sessions(request, portal)
        provider = settings.identity(portal).provider(request.path_params["provider"])
        if provider is None:
            return views.message(
                request, portal, 404, "signIn", "providerUnknown", ("/signin", "signIn")
            )
        try:
            client = _registry.client(portal, provider)
            metadata = await client.load_server_metadata()
            if not _same_issuer(str(metadata.get("issuer", "")), provider.issuer):
                raise ProviderFailed(f"{provider.name}'s discovery names another issuer")
            callback = f"{portal.url.rstrip('/')}/auth/{provider.name}/callback"
            response: Response = await client.authorize_redirect(request, callback)
            return response
        except (ProviderFailed, OAuthError, OSError, ValueError) as exc:
            log.warning("sign-in with %s could not start: %s", provider.name, exc)
            return views.message(
                request,
                portal,
                503,
                "signIn",
                "providerDown",
                ("/signin", "signIn"),
                name=provider.display_name,
            )
        except Exception as exc:  # httpx errors from discovery
            why = trust.untrusted(exc) or type(exc).__name__
            log.warning("sign-in with %s could not start: %s", provider.name, why)
            return views.message(
                request,
                portal,
                503,
                "signIn",
                "providerDown",
                ("/signin", "signIn"),
                name=provider.display_name,
            )

    async def callback(request: Request) -> Response:
        try:
            portal = reader.get()
        except ConfigError:
            return Response("not configured\n", 503, headers={"Retry-After": "30"})
        if not sessions.sessions_work(request):
            return no_sessions(request, portal)
        ident = settings.identity(portal)
        provider = ident.provider(request.path_params["provider"])
        if provider is None:
            return views.message(
                request, portal, 404, "signIn", "providerUnknown", ("/signin", "signIn")
            )
        try:
            client = _registry.client(portal, provider)
            token = await client.authorize_access_token(request)
            userinfo = token.get("userinfo")
            if not userinfo:  # Authlib checks an ID token only when the session kept a nonce
                raise ProviderFailed("no verified ID token")
            info = dict(userinfo)
            if "email" not in info:
                # Many providers put the e-mail only in UserInfo; its `sub` must be the
                # ID token's (OpenID Connect Core 5.3.2), and the ID token's claims win.
                extra = dict(await client.userinfo(token=token))
                if extra.get("sub") != info.get("sub"):
                    raise ProviderFailed("UserInfo is about someone else")
                info = {**extra, **info}
            del token  # the tokens end here: nothing of them is kept
        except (ProviderFailed, OAuthError, JoseError, ValueError, KeyError, TypeError) as exc:
            # A replayed or forged state, a wrong nonce, a bad signature, an expired token.
            log.warning("sign-in with %s refused: %s", provider.name, type(exc).__name__)
            return views.message(
                request,
                portal,
                400,
                "signIn",
                "providerRefused",
                ("/signin", "signIn"),
                name=provider.display_name,
            )
        except Exception as exc:  # the provider could not be reached (httpx)
            why = trust.untrusted(exc) or type(exc).__name__
            log.warning("sign-in with %s failed: %s", provider.name, why)
            return views.message(
                request,
                portal,
                503,
                "signIn",
                "providerDown",
                ("/signin", "signIn"),
                name=provider.display_name,
            )
        try:
            return await _finish(request, portal, ident, provider, info)
        except Unavailable as exc:
            log.warning("the instance could not be asked: %s", exc)
            return views.message(
                request, portal, 503, "unavailableTitle", "unavailable", ("/", "home")
            )

    async def _finish(
        request: Request,
        portal: Portal,
        ident: settings.Identity,
        provider: Provider,
        info: dict[str, Any],
    ) -> Response:
        subject = str(info.get("sub") or "")
        email = str(info.get("email") or "").strip()
        verified = info.get("email_verified") is True
        issuer = provider.issuer
        claims = kept_claims(info)
        contact = await backend.contact_by_identity(portal, issuer, subject)
        if contact is None and verified and email:
            # A verified address may join an existing contact to this identity.
            contact = await backend.contact_by_email(portal, email)
            if contact is not None:
                linked = await backend.link_identity(portal, str(contact["id"]), issuer, subject)
                if linked.status != 200:
                    return views.message(
                        request, portal, 409, "signIn", "identityTaken", ("/signin", "signIn")
                    )
                await backend.update_contact(portal, str(contact["id"]), {"emailVerified": True})
                contact["emailVerified"] = True
        if contact is None:
            code = request.session.get("inv")
            state = None
            if isinstance(code, str) and code:
                state = instance.invitation_state(await backend.check_invitation(portal, code))
            decision = rules.sign_up(ident.registration, state)
            if not decision.allowed:
                request.session.pop("inv", None)
                return views.message(
                    request,
                    portal,
                    403,
                    "signUpClosedTitle",
                    decision.reason,
                    ("/signin", "signIn"),
                )
            if not email:
                return views.message(
                    request,
                    portal,
                    422,
                    "signIn",
                    "providerNoEmail",
                    ("/signin", "signIn"),
                    name=provider.display_name,
                )
            fields = {
                "email": email,
                "firstName": str(info.get("given_name") or "")[:200],
                "lastName": str(info.get("family_name") or "")[:200],
                "emailVerified": verified,
            }
            created = await backend.create_contact(portal, fields)
            if created.status != 201:
                # The address belongs to a contact, and the provider did not verify it.
                return views.message(
                    request, portal, 409, "signIn", "emailTakenUnverified", ("/signin", "signIn")
                )
            contact = created.data
            start_session(request, contact, [], claims, provider.name)
            problem = await redeem_pending(request, portal, backend, str(contact["id"]))
            if problem:  # the code was used up meanwhile: the new contact goes again
                await backend.delete_contact(portal, str(contact["id"]))
                request.session.clear()
                return views.message(
                    request, portal, 409, "invitationTitle", problem, ("/signin", "signIn")
                )
            linked = await backend.link_identity(portal, str(contact["id"]), issuer, subject)
            if linked.status != 200:
                request.session.clear()
                return views.message(
                    request, portal, 409, "signIn", "identityTaken", ("/signin", "signIn")
                )
            log.info("contact %s signed up with %s", contact["id"], provider.name)
            return go("/profile")
        granted = await backend.invitation_roles(portal, str(contact["id"]))
        start_session(request, contact, granted, claims, provider.name)
        problem = await redeem_pending(request, portal, backend, str(contact["id"]))
        if problem:
            return views.message(
                request, portal, 409, "invitationTitle", problem, ("/profile", "profile")
            )
        return go("/profile")

    return [
        Route("/auth/{provider}/signin", signin),
        Route("/auth/{provider}/callback", callback),
    ]
