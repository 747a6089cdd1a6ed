"""Sessions: a signed cookie that says who is signed in, and the visibility gate.

The cookie (`__Host-portico-session`: Secure, HttpOnly, SameSite=Lax, Path=/) carries
the contact's id, e-mail, names, the roles invitations gave and the provider claims the
portal's rules look at — never a provider's tokens. It is signed (itsdangerous, HMAC)
with the newest key of the portal's key file and accepted under any key in it, so a new
key is added first and the old one dropped a session lifetime later: nobody is signed
out by a rotation.
"""

from __future__ import annotations

import json
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portico_runtime.config import ConfigError, Reader
from portico_runtime.identity import rules, settings, views
from portico_runtime.identity.backend import Backend, Unavailable
from portico_runtime.identity.csrf import csrf_token as csrf_token
from portico_runtime.visitor import Contact

COOKIE = "__Host-portico-session"
MIN_KEY_LENGTH = 32
# Paths a private site answers to anyone: signing in (all its steps) and the probes.
OPEN_PATHS = ("/healthz", "/signin", "/signup", "/signout", "/register", "/password/", "/auth/")


class Keys:
    """The session keys from their file (one per line, oldest first), re-read when it changes."""

    def __init__(self) -> None:
        self._stamp: tuple[str, int, int] | None = None
        self._keys: list[str] = []

    def get(self, path: str) -> list[str]:
        try:
            st = Path(path).stat()
            stamp = (path, st.st_mtime_ns, st.st_size)
        except OSError:
            return []
        if stamp != self._stamp:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
            self._keys = [k.strip() for k in lines if len(k.strip()) >= MIN_KEY_LENGTH]
            self._stamp = stamp
        return self._keys


def _serializer(keys: list[str]) -> URLSafeTimedSerializer:
    # A list of keys: itsdangerous signs with the last and accepts any of them.
    return URLSafeTimedSerializer(keys, salt="portico-session")


def contact_of(session: dict[str, Any], ident: settings.Identity) -> Contact | None:
    """The signed-in contact a session names, with the roles the rules give them now."""
    cid = session.get("cid")
    if not isinstance(cid, str) or not cid:
        return None
    email = str(session.get("em", ""))
    roles = rules.roles(
        ident.web_roles,
        email,
        bool(session.get("ev")),
        session.get("cl") or {},
        [str(r) for r in session.get("gr") or []],
    )
    return Contact(
        id=cid,
        email=email,
        first_name=str(session.get("fn", "")),
        last_name=str(session.get("ln", "")),
        roles=roles,
    )


def sessions_work(request: HTTPConnection) -> bool:
    return bool(request.scope.get("portico.session_keys"))


class SessionMiddleware:
    def __init__(self, app: ASGIApp, reader: Reader, backend: Backend) -> None:
        self.app = app
        self.reader = reader
        self.backend = backend
        self.keys = Keys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            portal = self.reader.get()
        except ConfigError:
            await self.app(scope, receive, send)  # the app answers "Getting set up"
            return
        ident = settings.identity(portal)
        keys = self.keys.get(ident.keys_file)
        scope["portico.session_keys"] = bool(keys)
        session = self._load(scope, keys, ident.max_age)
        before = json.dumps(session, sort_keys=True)
        if session.get("cid") and time.time() - float(session.get("rt") or 0) > ident.refresh:
            await self._refresh(portal, session)
        scope["session"] = session
        contact = contact_of(session, ident)
        scope.setdefault("state", {})["contact"] = contact
        path = scope.get("path", "/")
        if ident.private and not path.startswith(OPEN_PATHS):
            named = contact is not None and ident.allow.include(
                contact.email, bool(session.get("ev")), session.get("cl") or {}
            )
            if not named:
                response = (
                    RedirectResponse(f"/signin?next={quote(path, safe='/')}", 303)
                    if contact is None
                    else await views.not_allowed(HTTPConnection(scope), portal, contact)
                )
                response.headers["Cache-Control"] = "no-store"
                await response(scope, receive, self._sender(send, scope, keys, before))
                return
        await self.app(scope, receive, self._sender(send, scope, keys, before))

    async def _refresh(self, portal: Any, session: dict[str, Any]) -> None:
        """Read the contact and their invitation roles again: a contact removed from the
        instance is signed out, and a redemption undone takes its roles away, within
        `sessions.refreshSeconds`. An instance that cannot be asked changes nothing."""
        cid = str(session["cid"])
        try:
            contact = await self.backend.contact(portal, cid)
            granted = await self.backend.invitation_roles(portal, cid) if contact else []
        except Unavailable:
            return
        if contact is None:
            session.clear()
            return
        session.update(
            {
                "em": str(contact.get("email", "")),
                "ev": bool(contact.get("emailVerified")),
                "fn": str(contact.get("firstName", "")),
                "ln": str(contact.get("lastName", "")),
                "gr": sorted(set(granted)),
                "rt": int(time.time()),
            }
        )

    def _load(self, scope: Scope, keys: list[str], max_age: int) -> dict[str, Any]:
        if not keys:
            return {}
        cookies = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                try:
                    cookies.load(value.decode("latin-1"))
                except Exception:  # a malformed Cookie header is no session, not an error
                    return {}
        morsel = cookies.get(COOKIE)
        if morsel is None:
            return {}
        try:
            data = _serializer(keys).loads(morsel.value, max_age=max_age)
        except BadSignature:  # tampered, signed by a retired key, or older than max_age
            return {}
        if not isinstance(data, dict):
            return {}
        # A sign-in lasts max_age from the moment it happened, however busy the session is.
        signed_in_at = data.get("at")
        if isinstance(signed_in_at, (int, float)) and time.time() - signed_in_at > max_age:
            return {}
        return data

    def _sender(self, send: Send, scope: Scope, keys: list[str], before: str) -> Send:
        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start" and keys:
                session = scope.get("session") or {}
                after = json.dumps(session, sort_keys=True)
                if after != before:
                    headers = MutableHeaders(scope=message)
                    attrs = "Path=/; Secure; HttpOnly; SameSite=Lax"
                    if session:
                        value = _serializer(keys).dumps(session)
                        headers.append("Set-Cookie", f"{COOKIE}={value}; {attrs}")
                    else:
                        headers.append("Set-Cookie", f"{COOKIE}=; Max-Age=0; {attrs}")
            await send(message)

        return sender
