"""The content pages: lists, items and search, rendered on the server, gated on the server.

A page asks the instance (one shared async client), gates every item on the visitor's
web roles, renders, and only then hands the view to the interactions recorder, which
never blocks (a page never waits for the hub).
"""

from __future__ import annotations

import math
from typing import Any, Protocol
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from portico_runtime import html
from portico_runtime.client import InstanceError
from portico_runtime.config import ConfigError, Portal, Reader
from portico_runtime.content import gate, kinds, render
from portico_runtime.content.kinds import Kind
from portico_runtime.instance_api import InstanceAPI, NotFound, portal_path
from portico_runtime.translations import text
from portico_runtime.visitor import Contact, signed_in

PAGE_SIZE = 10
MAX_QUERY = 200
RETRY_AFTER = "30"


class Recorder(Protocol):
    """Where views and searches go (interactions.Tracker); must return at once."""

    def viewed(
        self, portal: Portal, contact: Contact, kind: Kind, item_id: str, title: str
    ) -> None: ...

    def searched(self, portal: Portal, contact: Contact, q: str) -> None: ...


class _NoRecorder:
    def viewed(
        self, portal: Portal, contact: Contact, kind: Kind, item_id: str, title: str
    ) -> None:
        pass

    def searched(self, portal: Portal, contact: Contact, q: str) -> None:
        pass


def _page_number(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", "1")), 10_000))
    except ValueError:
        return 1


def routes(
    reader: Reader, api: InstanceAPI | None = None, recorder: Recorder | None = None
) -> list[Route]:
    instance = api or InstanceAPI()
    record: Recorder = recorder or _NoRecorder()

    def respond(
        request: Request, portal: Portal, template: str, status: int = 200, **context: Any
    ) -> Response:
        language = html.choose_language(
            request.headers.get("accept-language", ""), portal.languages, portal.language
        )
        context.setdefault("current", None)
        body = render.page(
            template, language, portal=portal, kinds=kinds.offered(portal.features), **context
        )
        headers = {"Content-Language": language, "Vary": "Accept-Language, Cookie"}
        if signed_in(request) is not None:
            headers["Cache-Control"] = "no-store"  # gated content is never cached on the way
        if status == 503:
            headers["Retry-After"] = RETRY_AFTER
        return HTMLResponse(body, status, headers=headers)

    def language_of(request: Request, portal: Portal) -> str:
        return html.choose_language(
            request.headers.get("accept-language", ""), portal.languages, portal.language
        )

    def message(request: Request, portal: Portal, status: int, title: str, body: str) -> Response:
        lang = language_of(request, portal)
        return respond(
            request,
            portal,
            "message.html",
            status,
            title=text(lang, title),
            message=text(lang, body),
        )

    def not_found(request: Request, portal: Portal) -> Response:
        return message(request, portal, 404, "notFound", "notFoundBody")

    def unavailable(request: Request, portal: Portal) -> Response:
        return message(request, portal, 503, "unavailable", "unavailableBody")

    def portal_or_none() -> Portal | None:
        try:
            return reader.get()
        except ConfigError:
            return None

    def setup(request: Request) -> Response:
        body = html.setup_page(request.url.hostname or "This portal", "en-US")
        return HTMLResponse(body, 503, headers={"Retry-After": RETRY_AFTER})

    def paging_query(request: Request) -> Any:
        def query(number: int) -> str:
            params = dict(request.query_params)
            params["page"] = str(number)
            return urlencode(params)

        return query

    def handlers(kind: Kind) -> list[Route]:
        async def listing(request: Request) -> Response:
            portal = portal_or_none()
            if portal is None:
                return setup(request)
            if kind not in kinds.offered(portal.features):
                return not_found(request, portal)
            roles = gate.roles_of(signed_in(request))
            number = _page_number(request)
            params = {
                "language": language_of(request, portal),
                "roles": ",".join(sorted(roles)),
                "page": str(number),
                "pageSize": str(PAGE_SIZE),
            }
            try:
                found = await instance.get(
                    portal, f"{portal_path(portal)}/content/{kind.name}", params
                )
            except InstanceError:
                return unavailable(request, portal)
            items = [i for i in found.get("items", []) if gate.readable(i, roles)]
            lang = language_of(request, portal)
            return respond(
                request,
                portal,
                "list.html",
                title=text(lang, kind.title_key),
                current=kind,
                items=items,
                page=number,
                pages=max(1, math.ceil(int(found.get("total", 0)) / PAGE_SIZE)),
                query=paging_query(request),
            )

        async def item(request: Request) -> Response:
            portal = portal_or_none()
            if portal is None:
                return setup(request)
            if kind not in kinds.offered(portal.features):
                return not_found(request, portal)
            visitor = signed_in(request)
            roles = gate.roles_of(visitor)
            item_id = request.path_params["id"]
            params = {"language": language_of(request, portal), "roles": ",".join(sorted(roles))}
            path = f"{portal_path(portal)}/content/{kind.name}/{item_id}"
            try:
                found = await instance.get(portal, path, params)
            except NotFound:
                return not_found(request, portal)
            except InstanceError:
                return unavailable(request, portal)
            # Gated on the server: an item this visitor may not read does not exist for them.
            if not gate.readable(found, roles):
                return not_found(request, portal)
            title = str(found.get("title", ""))
            response = respond(
                request,
                portal,
                "item.html",
                title=title,
                current=kind,
                paragraphs=render.paragraphs(str(found.get("body", ""))),
            )
            if visitor is not None:
                record.viewed(portal, visitor, kind, item_id, title)
            return response

        return [Route(kind.path, listing), Route(f"{kind.path}/{{id}}", item)]

    async def search(request: Request) -> Response:
        portal = portal_or_none()
        if portal is None:
            return setup(request)
        offered = kinds.offered(portal.features)
        if not offered:
            return not_found(request, portal)
        lang = language_of(request, portal)
        visitor = signed_in(request)
        roles = gate.roles_of(visitor)
        q = " ".join(request.query_params.get("q", "").split())[:MAX_QUERY]
        number = _page_number(request)
        context: dict[str, Any] = {
            "title": text(lang, "search"),
            "current": "search",
            "q": q,
            "items": [],
            "total": 0,
            "page": number,
            "pages": 1,
            "first": 1,
            "query": paging_query(request),
        }
        if not q:
            return respond(request, portal, "search.html", **context)
        params = {
            "q": q,
            "language": lang,
            "roles": ",".join(sorted(roles)),
            "kinds": ",".join(k.name for k in offered),
            "page": str(number),
            "pageSize": str(PAGE_SIZE),
        }
        try:
            found = await instance.get(portal, f"{portal_path(portal)}/content/search", params)
        except InstanceError:
            return unavailable(request, portal)
        items = [
            {**i, "kind": kinds.BY_NAME[i["kind"]]}
            for i in found.get("items", [])
            if isinstance(i, dict)
            and kinds.BY_NAME.get(str(i.get("kind"))) in offered
            and gate.readable(i, roles)
        ]
        total = int(found.get("total", 0))
        context.update(
            items=items,
            total=total,
            pages=max(1, math.ceil(total / PAGE_SIZE)),
            first=(number - 1) * PAGE_SIZE + 1,
        )
        response = respond(request, portal, "search.html", **context)
        if visitor is not None and number == 1:  # paging through results is not a new search
            record.searched(portal, visitor, q)
        return response

    result: list[Route] = []
    for kind in kinds.KINDS:
        result.extend(handlers(kind))
    result.append(Route("/search", search))
    return result
