"""The session's CSRF token: every form carries it, every POST is checked against it."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import HTTPConnection


def csrf_token(request: HTTPConnection) -> str:
    """This session's CSRF token (made on first use)."""
    session: dict[str, Any] = request.scope.setdefault("session", {})
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token
