"""What every way of signing in shares: starting a session for a contact, redeeming a
pending invitation, checking a form's CSRF token, where to go next."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portico_runtime.config import Portal
from portico_runtime.identity import backend as instance
from portico_runtime.identity import views
from portico_runtime.identity.backend import Backend

log = logging.getLogger("portico.identity")


class FormRejected(Exception):
    """A POST without this session's CSRF token: answered 403, never acted on."""


async def form(request: Request) -> dict[str, str]:
    """The submitted form, once its CSRF token matches the session's."""
    data = await request.form()
    sent = data.get("csrf")
    kept = request.session.get("csrf")
    if (
        not isinstance(sent, str)
        or not isinstance(kept, str)
        or not hmac.compare_digest(sent, kept)
    ):
        raise FormRejected()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in: never another site (an open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/profile"


def start_session(
    request: Request,
    contact: dict[str, Any],
    granted: list[str],
    claims: dict[str, Any] | None = None,
    provider: str = "",
) -> None:
    """Sign CONTACT in: a new session (a new CSRF token too: no fixation carries over)."""
    pending = request.session.get("inv")
    request.session.clear()
    request.session.update(
        {
            "cid": str(contact["id"]),
            "em": str(contact.get("email", "")),
            "ev": bool(contact.get("emailVerified")),
            "fn": str(contact.get("firstName", "")),
            "ln": str(contact.get("lastName", "")),
            "gr": sorted(set(granted)),
            "cl": claims or {},
            "at": int(time.time()),
            "rt": int(time.time()),
            "idp": provider,
            "csrf": secrets.token_urlsafe(24),
        }
    )
    if pending:
        request.session["inv"] = pending


async def redeem_pending(
    request: Request, portal: Portal, backend: Backend, contact_id: str
) -> str | None:
    """Redeem the invitation code this session carries (if any) for CONTACT_ID.
    Returns None when done or none was pending, else the problem's message key."""
    code = request.session.pop("inv", None)
    if not isinstance(code, str) or not code:
        return None
    answer = await backend.redeem_invitation(portal, code, contact_id)
    state = instance.invitation_state(answer)
    if state != "Valid":
        return f"invitation{state}"
    roles = await backend.invitation_roles(portal, contact_id)
    request.session["gr"] = sorted(set(roles) | set(request.session.get("gr") or []))
    log.info("invitation redeemed by contact %s", contact_id)
    return None


def rejected(request: Request, portal: Portal) -> Response:
    return views.message(request, portal, 403, "formExpiredTitle", "formExpired", ("/", "home"))


def unavailable(request: Request, portal: Portal) -> Response:
    return views.message(request, portal, 503, "unavailableTitle", "unavailable", ("/", "home"))


def no_sessions(request: Request, portal: Portal) -> Response:
    return views.message(request, portal, 503, "unavailableTitle", "noSessionKeys", None)


def go(path: str) -> RedirectResponse:
    return RedirectResponse(path, 303)
