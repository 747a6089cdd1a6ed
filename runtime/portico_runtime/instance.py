"""`instance`: a small stand-in for the backing CRM, speaking the instance API the runtime uses.

For tests and demos only (state in memory). It checks the credentials, knows which
languages and solutions are installed, refuses add-ons whose prerequisite is
missing, and keeps translated strings that people edited.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Add-on packages and the solution the instance must have for them.
PREREQUISITES = {"PartnerFieldService": "FieldService", "PartnerProjectService": "ProjectService"}


@dataclass
class InstanceState:
    authorization: str  # the exact header value a caller must send
    languages: tuple[str, ...]
    solutions: tuple[str, ...]
    reject: tuple[str, ...] = ()  # packages whose install fails (to test failure paths)
    installed: dict[str, list[str]] = field(default_factory=dict)
    translations: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    edited: dict[str, dict[str, set[str]]] = field(default_factory=dict)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


def create_app(state: InstanceState) -> Starlette:
    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), state.authorization.encode())

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            data = None
        return data if isinstance(data, dict) else {}

    async def about(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized")
        return JSONResponse({"languages": state.languages, "solutions": state.solutions})

    async def solutions(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized")
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        wanted = (await body(request)).get("solutions") or []
        for package in wanted:
            if package in state.reject:
                return _error(422, f"installing {package} failed on the instance")
            need = PREREQUISITES.get(package)
            if need and need not in state.solutions:
                return _error(409, f"{package} needs {need} installed on the instance")
        done = state.installed.setdefault(key, [])
        done.extend(p for p in wanted if p not in done)
        return JSONResponse({"installed": done})

    async def translation(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized")
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        lang = request.path_params["lang"]
        if lang not in state.languages:
            return _error(409, f"language {lang} is not installed on the instance")
        strings = (await body(request)).get("strings") or {}
        current = state.translations.setdefault(key, {}).setdefault(lang, {})
        edited = state.edited.setdefault(key, {}).setdefault(lang, set())
        if request.method == "PATCH":  # a person edits strings
            current.update({str(k): str(v) for k, v in strings.items()})
            edited.update(str(k) for k in strings)
            return JSONResponse({"strings": current})
        kept = 0
        for k, v in strings.items():
            if k in edited:
                kept += 1
            else:
                current[str(k)] = str(v)
        return JSONResponse({"imported": len(strings) - kept, "keptEdited": kept})

    async def portal(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized")
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        return JSONResponse(
            {
                "installed": state.installed.get(key, []),
                "translations": sorted(state.translations.get(key, {})),
            }
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    base = "/portico/v1/portals/{ns}/{name}"
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/portico/v1/instance", about),
            Route(base, portal),
            Route(f"{base}/solutions", solutions, methods=["POST"]),
            Route(f"{base}/translations/{{lang}}", translation, methods=["PUT", "PATCH"]),
        ]
    )
