"""Contacts: the people a portal serves, their linked sign-in identities, local passwords
and password-reset tokens (docs/runtime-contract.md, "Contacts, identities, credentials").

The runtime keeps no user database; this is it. External identities are keyed by
(issuer, subject), never by e-mail. Passwords are kept only as argon2id hashes and
reset tokens only as SHA-256 hashes. One lock makes every write (and every
read-check-write, like redeeming a reset token) atomic.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_standin.auth import portal_caller
from portico_standin.http import PORTAL, body, error
from portico_standin.state import InstanceState, store

# The profile fields a person may edit on the portal (e-mail is their identity key: not here).
PROFILE_FIELDS = ("firstName", "lastName", "phone", "jobTitle")
MAX_FIELD = 200
RESET_TTL = 3600.0  # seconds a password-reset token is valid
_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Checked against when the e-mail is unknown, so the answer takes as long either way.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


@dataclass
class Contact:
    id: str
    email: str
    profile: dict[str, str]
    identities: set[tuple[str, str]] = field(default_factory=set)
    password_hash: str = ""
    # Set by the runtime once the person showed they read this mailbox (a provider's
    # email_verified, a reset link mailed there); e-mail rules need it.
    email_verified: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            **{k: self.profile.get(k, "") for k in PROFILE_FIELDS},
            "identities": [{"issuer": i, "subject": s} for i, s in sorted(self.identities)],
            "hasPassword": bool(self.password_hash),
            "emailVerified": self.email_verified,
        }


@dataclass
class ResetToken:
    contact: str
    expires: float
    used: bool = False


@dataclass
class PortalContacts:
    by_id: dict[str, Contact] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)  # lower-cased e-mail -> id
    by_identity: dict[tuple[str, str], str] = field(default_factory=dict)
    resets: dict[str, ResetToken] = field(default_factory=dict)  # sha256(token) -> token


class ContactStore:
    """Contacts per portal (`ns/name`); the stand-in does not share them across portals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.portals: dict[str, PortalContacts] = {}

    def of(self, request: Request) -> PortalContacts:
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        return self.portals.setdefault(key, PortalContacts())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _profile(data: dict[str, Any]) -> dict[str, str] | str:
    """The profile fields of a request body, or a message naming the bad one."""
    out: dict[str, str] = {}
    for key in PROFILE_FIELDS:
        if key in data:
            value = data[key]
            if not isinstance(value, str) or len(value) > MAX_FIELD:
                return f"{key} must be a string of at most {MAX_FIELD} characters"
            out[key] = value.strip()
    return out


def _email(data: dict[str, Any]) -> str:
    value = data.get("email")
    return value.strip() if isinstance(value, str) and "@" in value and len(value) <= 254 else ""


def routes(state: InstanceState) -> list[Route]:
    contacts = store(state, ContactStore)

    def guard(request: Request) -> JSONResponse | None:
        return error(401, "unauthorized") if portal_caller(request, state) is None else None

    async def find_or_create(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "GET":
            email = request.query_params.get("email", "").strip().lower()
            with contacts.lock:
                found = contacts.of(request).by_email.get(email)
                contact = contacts.of(request).by_id.get(found or "")
                if contact is None:
                    return error(404, "no contact with this e-mail")
                return JSONResponse(contact.view())
        data = await body(request)
        email, profile = _email(data), _profile(data)
        if not email:
            return error(422, "email must be an e-mail address")
        if isinstance(profile, str):
            return error(422, profile)
        with contacts.lock:
            mine = contacts.of(request)
            if email.lower() in mine.by_email:
                return JSONResponse(
                    {"message": "a contact has this e-mail", "reason": "Exists"}, 409
                )
            contact = Contact(id=str(uuid.uuid4()), email=email, profile=profile)
            contact.email_verified = data.get("emailVerified") is True
            mine.by_id[contact.id] = contact
            mine.by_email[email.lower()] = contact.id
            return JSONResponse(contact.view(), 201)

    async def one(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "DELETE":
            with contacts.lock:
                mine = contacts.of(request)
                gone = mine.by_id.pop(request.path_params["id"], None)
                if gone is None:
                    return error(404, "no such contact")
                mine.by_email.pop(gone.email.lower(), None)
                for key in gone.identities:
                    mine.by_identity.pop(key, None)
                for digest in [d for d, r in mine.resets.items() if r.contact == gone.id]:
                    mine.resets.pop(digest)
                return Response(status_code=204)
        data = await body(request) if request.method == "PATCH" else {}
        profile = _profile(data)
        if isinstance(profile, str):
            return error(422, profile)
        with contacts.lock:
            contact = contacts.of(request).by_id.get(request.path_params["id"])
            if contact is None:
                return error(404, "no such contact")
            contact.profile.update(profile)
            if data.get("emailVerified") is True:  # never unset: a mailbox once shown stays shown
                contact.email_verified = True
            return JSONResponse(contact.view())

    async def find_identity(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        key = (request.query_params.get("issuer", ""), request.query_params.get("subject", ""))
        with contacts.lock:
            found = contacts.of(request).by_identity.get(key)
            contact = contacts.of(request).by_id.get(found or "")
            if contact is None:
                return error(404, "no contact has this identity")
            return JSONResponse(contact.view())

    async def link_identity(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        data = await body(request)
        issuer, subject = data.get("issuer"), data.get("subject")
        if not (isinstance(issuer, str) and issuer and isinstance(subject, str) and subject):
            return error(422, "issuer and subject are required")
        with contacts.lock:
            mine = contacts.of(request)
            contact = mine.by_id.get(request.path_params["id"])
            if contact is None:
                return error(404, "no such contact")
            owner = mine.by_identity.get((issuer, subject))
            if owner not in (None, contact.id):
                return JSONResponse(
                    {"message": "this identity belongs to another contact", "reason": "Taken"}, 409
                )
            mine.by_identity[(issuer, subject)] = contact.id
            contact.identities.add((issuer, subject))
            return JSONResponse(contact.view())

    async def set_password(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        password = (await body(request)).get("password")
        if not isinstance(password, str) or not password:
            return error(422, "password is required")
        # Outside the lock and the event loop: hashing is slow on purpose.
        hashed = await run_in_threadpool(_HASHER.hash, password)
        with contacts.lock:
            contact = contacts.of(request).by_id.get(request.path_params["id"])
            if contact is None:
                return error(404, "no such contact")
            contact.password_hash = hashed
            return Response(status_code=204)

    async def check_password(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        data = await body(request)
        email, password = _email(data).lower(), data.get("password")
        with contacts.lock:
            mine = contacts.of(request)
            contact = mine.by_id.get(mine.by_email.get(email, ""))
            hashed = contact.password_hash if contact else ""
        if (
            not isinstance(password, str)
            or not await run_in_threadpool(_verify, hashed or _DUMMY, password)
            or not hashed
        ):
            # One answer for an unknown e-mail, no password set, and a wrong password (not
            # 401: that status means the portal's own credentials were refused).
            return JSONResponse({"valid": False, "reason": "Invalid"})
        if contact is not None and _HASHER.check_needs_rehash(hashed):
            new = await run_in_threadpool(_HASHER.hash, password)
            with contacts.lock:
                contact.password_hash = new
        assert contact is not None
        return JSONResponse({"valid": True, "contact": contact.view()})

    async def start_reset(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        email = _email(await body(request)).lower()
        token = secrets.token_urlsafe(32)
        with contacts.lock:
            mine = contacts.of(request)
            found = mine.by_email.get(email)
            if found is None:
                return error(404, "no contact with this e-mail")
            mine.resets[_digest(token)] = ResetToken(found, time.time() + RESET_TTL)
        # The only time the token exists outside a hash: the runtime e-mails it.
        return JSONResponse({"token": token, "expiresIn": int(RESET_TTL)}, 201)

    async def finish_reset(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        data = await body(request)
        token, password = data.get("token"), data.get("password")
        if not isinstance(token, str) or not isinstance(password, str) or not password:
            return error(422, "token and password are required")
        hashed = await run_in_threadpool(_HASHER.hash, password)
        with contacts.lock:
            mine = contacts.of(request)
            reset = mine.resets.get(_digest(token))
            if reset is None:
                return JSONResponse({"reason": "Unknown", "message": "no such token"}, 404)
            if reset.used:
                return JSONResponse({"reason": "Used", "message": "token already used"}, 409)
            if time.time() >= reset.expires:
                return JSONResponse({"reason": "Expired", "message": "token expired"}, 410)
            contact = mine.by_id[reset.contact]
            reset.used = True
            contact.password_hash = hashed
            contact.email_verified = True  # the link reached this mailbox
            return JSONResponse(contact.view())

    return [
        Route(f"{PORTAL}/contacts", find_or_create, methods=["GET", "POST"]),
        Route(f"{PORTAL}/contacts/{{id}}", one, methods=["GET", "PATCH", "DELETE"]),
        Route(f"{PORTAL}/contacts/{{id}}/identities", link_identity, methods=["POST"]),
        Route(f"{PORTAL}/contacts/{{id}}/password", set_password, methods=["PUT"]),
        Route(f"{PORTAL}/identities", find_identity),
        Route(f"{PORTAL}/credentials/check", check_password, methods=["POST"]),
        Route(f"{PORTAL}/password-resets", start_reset, methods=["POST"]),
        Route(f"{PORTAL}/password-resets/redeem", finish_reset, methods=["POST"]),
    ]


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
