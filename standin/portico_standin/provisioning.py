"""Provisioning: which languages and solutions the instance has, installing solution
packages for a portal (refusing add-ons whose prerequisite is missing), and translated
strings that people edited (never overwritten by an import)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico_standin.auth import caller, portal_caller
from portico_standin.http import PORTAL, body, error
from portico_standin.state import InstanceState

# Add-on packages and the solution the instance must have for them.
PREREQUISITES = {"PartnerFieldService": "FieldService", "PartnerProjectService": "ProjectService"}


def routes(state: InstanceState) -> list[Route]:
    async def about(request: Request) -> Response:
        if caller(request, state) is None:
            return error(401, "unauthorized")
        return JSONResponse({"languages": state.languages, "solutions": state.solutions})

    async def solutions(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        wanted = (await body(request)).get("solutions") or []
        for package in wanted:
            if package in state.reject:
                return error(422, f"installing {package} failed on the instance")
            need = PREREQUISITES.get(package)
            if need and need not in state.solutions:
                return error(409, f"{package} needs {need} installed on the instance")
        done = state.installed.setdefault(key, [])
        done.extend(p for p in wanted if p not in done)
        return JSONResponse({"installed": done})

    async def translation(request: Request) -> Response:
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        lang = request.path_params["lang"]
        if lang not in state.languages:
            return error(409, f"language {lang} is not installed on the instance")
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
        if portal_caller(request, state) is None:
            return error(401, "unauthorized")
        key = f"{request.path_params['ns']}/{request.path_params['name']}"
        return JSONResponse(
            {
                "installed": state.installed.get(key, []),
                "translations": sorted(state.translations.get(key, {})),
            }
        )

    return [
        Route("/portico/v1/instance", about),
        Route(PORTAL, portal),
        Route(f"{PORTAL}/solutions", solutions, methods=["POST"]),
        Route(f"{PORTAL}/translations/{{lang}}", translation, methods=["PUT", "PATCH"]),
    ]
