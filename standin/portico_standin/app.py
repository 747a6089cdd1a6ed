"""The stand-in instance as one Starlette app: each capability contributes its routes."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_standin import contacts, content, invitations, provisioning, tokens
from portico_standin.state import InstanceState

# One line per capability of the instance API (docs/runtime-contract.md).
CAPABILITIES: list[Callable[[InstanceState], list[Route]]] = [
    provisioning.routes,
    contacts.routes,
    content.routes,
    invitations.routes,
    tokens.routes,
]


def create_app(state: InstanceState) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [Route("/healthz", healthz)]
    for capability in CAPABILITIES:
        routes.extend(capability(state))
    return Starlette(routes=routes)
