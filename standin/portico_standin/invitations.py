"""Invitations: the operator registers an invitation by the hash of its code; the portal's
runtime checks and redeems codes for contacts.

The instance is the system of record for redemptions: a redemption is a compare-and-
increment under one lock, so two at once can never exceed `maxRedemptions` (a Single
invitation allows one). Only the code's SHA-256 is kept; the code itself never reaches
the instance except inside a check or redeem request, where it is hashed and dropped.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_standin import state as state_
from portico_standin.auth import portal_caller
from portico_standin.http import PORTAL, body, error
from portico_standin.state import InstanceState

# Why a code does not work, and the HTTP status each answer has (docs/runtime-contract.md).
STATUS = {"Unknown": 404, "Used": 409, "Expired": 410, "Revoked": 410}


def code_hash(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.encode()).hexdigest()


def _time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Invitation:
    id: str
    code_hash: str
    type: str = "Single"
    max_redemptions: int = 1  # 0: unlimited (Group only)
    expires_at: datetime.datetime | None = None
    web_roles: tuple[str, ...] = ()
    contact: dict[str, str] = field(default_factory=dict)
    revoked: bool = False
    redemptions: dict[str, str] = field(default_factory=dict)  # contact ID → when

    @property
    def limit(self) -> int:
        return 1 if self.type == "Single" else self.max_redemptions

    def refusal(self, contact: str, now: datetime.datetime) -> str:
        """Why CONTACT cannot redeem (or use) the code now; "" when they can."""
        if self.revoked:
            return "Revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "Expired"
        if contact in self.redemptions:
            return ""  # redeeming again is the same redemption
        if self.limit and len(self.redemptions) >= self.limit:
            return "Used"
        return ""

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "codeHash": self.code_hash,
            "type": self.type,
            "maxRedemptions": self.max_redemptions,
            "expiresAt": _iso(self.expires_at) if self.expires_at else None,
            "webRoles": list(self.web_roles),
            "contact": self.contact,
            "revoked": self.revoked,
            "redemptions": [{"contact": c, "at": at} for c, at in self.redemptions.items()],
        }


@dataclass
class Invitations:
    """Every portal's invitations; one lock makes each check-and-change atomic."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_portal: dict[str, dict[str, Invitation]] = field(default_factory=dict)

    def find(self, portal: str, code: str) -> Invitation | None:
        wanted = code_hash(code)
        for invitation in self.by_portal.get(portal, {}).values():
            if invitation.code_hash == wanted:
                return invitation
        return None


def _parse(id_: str, raw: dict[str, Any]) -> Invitation | str:
    """An invitation from a PUT body, or what is wrong with it."""
    digest = raw.get("codeHash")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        return "codeHash must be 'sha256:' and 64 hex digits"
    kind = raw.get("type", "Single")
    if kind not in ("Single", "Group"):
        return "type must be Single or Group"
    maximum = raw.get("maxRedemptions", 0)
    if not isinstance(maximum, int) or maximum < 0:
        return "maxRedemptions must be a whole number, 0 for unlimited"
    expires = _time(raw.get("expiresAt"))
    if raw.get("expiresAt") and expires is None:
        return "expiresAt must be an RFC 3339 time"
    roles = raw.get("webRoles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return "webRoles must be a list of names"
    contact = raw.get("contact") or {}
    if not isinstance(contact, dict):
        return "contact must be an object"
    return Invitation(
        id=id_,
        code_hash=digest.lower(),
        type=kind,
        max_redemptions=maximum if kind == "Group" else 1,
        expires_at=expires,
        web_roles=tuple(roles),
        contact={k: str(v) for k, v in contact.items() if k in ("email", "firstName", "lastName")},
        revoked=bool(raw.get("revoked", False)),
    )


def routes(state: InstanceState) -> list[Route]:
    store = state_.store(state, Invitations)

    def _portal(request: Request) -> str:
        return f"{request.path_params['ns']}/{request.path_params['name']}"

    async def put_or_get(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        portal, id_ = _portal(request), request.path_params["id"]
        with store.lock:
            mine = store.by_portal.setdefault(portal, {})
            if request.method == "GET":
                found = mine.get(id_)
                if found is None:
                    return error(404, f"no invitation {id_}")
                return JSONResponse(found.view())
        parsed = _parse(id_, await body(request))
        if isinstance(parsed, str):
            return error(422, parsed)
        with store.lock:
            old = mine.get(id_)
            if old is not None:
                if old.code_hash == parsed.code_hash:
                    parsed.redemptions = old.redemptions  # same code: its redemptions stand
                parsed.revoked = parsed.revoked or old.revoked  # revocation is final
            mine[id_] = parsed
            return JSONResponse(parsed.view(), 200 if old else 201)

    async def answer(request: Request, redeem: bool) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        raw = await body(request)
        code, contact = raw.get("code"), raw.get("contactId", "")
        if not isinstance(code, str) or not code:
            return error(422, "code is required")
        if redeem and (not isinstance(contact, str) or not contact):
            return error(422, "contactId is required")
        now = datetime.datetime.now(datetime.UTC)
        with store.lock:  # compare and increment as one step
            found = store.find(_portal(request), code)
            reason = "Unknown" if found is None else found.refusal(str(contact), now)
            if reason:
                return JSONResponse({"reason": reason}, STATUS[reason])
            assert found is not None
            if redeem:
                found.redemptions.setdefault(str(contact), _iso(now))
            return JSONResponse({"state": "Valid", "webRoles": list(found.web_roles)})

    async def check(request: Request) -> Response:
        return await answer(request, redeem=False)

    async def redeem(request: Request) -> Response:
        return await answer(request, redeem=True)

    async def roles(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        contact = request.query_params.get("contact", "")
        with store.lock:
            granted = {
                role
                for invitation in store.by_portal.get(_portal(request), {}).values()
                if contact in invitation.redemptions
                for role in invitation.web_roles
            }
        return JSONResponse({"webRoles": sorted(granted)})

    async def undo(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        id_, contact = request.path_params["id"], request.path_params["contact"]
        with store.lock:
            found = store.by_portal.get(_portal(request), {}).get(id_)
            if found is None:
                return error(404, f"no invitation {id_}")
            if found.redemptions.pop(contact, None) is None:
                return error(404, f"contact {contact} has not redeemed invitation {id_}")
        return Response(status_code=204)

    return [
        # The fixed paths first: "check" is not an invitation ID.
        Route(f"{PORTAL}/invitations/check", check, methods=["POST"]),
        Route(f"{PORTAL}/invitations/redeem", redeem, methods=["POST"]),
        Route(f"{PORTAL}/invitations/roles", roles, methods=["GET"]),
        Route(f"{PORTAL}/invitations/{{id}}", put_or_get, methods=["PUT", "GET"]),
        Route(f"{PORTAL}/invitations/{{id}}/redemptions/{{contact}}", undo, methods=["DELETE"]),
    ]
