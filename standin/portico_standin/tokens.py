"""The token exchange: the operator, holding the instance's own credentials, mints a token
valid only for one portal (`{namespace}/{portal}`) and revokes it at withdrawal."""

from __future__ import annotations

import datetime
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_standin.auth import Grant, Tokens, instance_caller
from portico_standin.http import body, error
from portico_standin.state import InstanceState, store

# A token lives at least a minute and at most a day; the operator renews before expiry.
MIN_TTL, MAX_TTL, DEFAULT_TTL = 60, 86400, 3600


def routes(state: InstanceState) -> list[Route]:
    async def mint(request: Request) -> Response:
        if instance_caller(request, state) is None:
            return error(401, "minting a token needs the instance's own credentials")
        data = await body(request)
        namespace, portal = data.get("namespace"), data.get("portal")
        if not isinstance(namespace, str) or not namespace:
            return error(422, "namespace is required")
        if not isinstance(portal, str) or not portal:
            return error(422, "portal is required")
        ttl = data.get("ttlSeconds", DEFAULT_TTL)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not MIN_TTL <= ttl <= MAX_TTL:
            return error(422, f"ttlSeconds must be a whole number from {MIN_TTL} to {MAX_TTL}")
        tokens = store(state, Tokens)
        value, token_id = secrets.token_urlsafe(32), secrets.token_hex(12)
        expires = tokens.clock() + ttl
        tokens.add(value, Grant(token_id, (namespace, portal), expires))
        stamp = datetime.datetime.fromtimestamp(int(expires), datetime.UTC)
        return JSONResponse(
            {"id": token_id, "token": value, "expiresAt": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")},
            201,
        )

    async def revoke(request: Request) -> Response:
        if instance_caller(request, state) is None:
            return error(401, "revoking a token needs the instance's own credentials")
        # Idempotent: an unknown or already revoked id is revoked all the same.
        store(state, Tokens).revoke(request.path_params["id"])
        return Response(status_code=204)

    return [
        Route("/portico/v1/tokens", mint, methods=["POST"]),
        Route("/portico/v1/tokens/{id}", revoke, methods=["DELETE"]),
    ]
