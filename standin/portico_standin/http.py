"""What every capability's handlers share: the portal path, JSON bodies, errors."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

# Everything a portal's runtime may call lives under its own path: a portal-scoped token
# is checked against `{ns}` and `{name}` (auth.portal_caller).
PORTAL = "/portico/v1/portals/{ns}/{name}"


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


async def body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {}
